#include "sync/plan.h"

#include "core/xalloc.h"

#include <stdlib.h>
#include <string.h>

unsigned plan_merge_flags(unsigned base, unsigned local, unsigned remote)
{
	unsigned local_changed = local ^ base;
	return (local & local_changed) | (remote & ~local_changed);
}

struct idxvec {
	size_t *v;
	size_t n, cap;
};

struct planner {
	const struct plan_input *in;
	struct plan *out;
	bool *local_used, *remote_used;
	struct idxvec pool_rows;   /* rows with uid 0, to re-match */
	struct idxvec pool_local;  /* files no row knows */
	struct idxvec pool_remote; /* UIDs no row knows */
	struct idxvec del_local;   /* rows whose file is to go */
	struct idxvec del_remote;  /* rows whose server message is to go */
	uint32_t *rematched;	   /* the UID each row of pool_rows was paired with, or 0 */
};

static struct plan_action *emit(struct plan *p, enum plan_op op)
{
	p->v = xgrow(p->v, &p->cap, p->n + 1, sizeof(*p->v));
	struct plan_action *a = &p->v[p->n++];
	*a = (struct plan_action){
		.op = op, .row = PLAN_NONE, .local = PLAN_NONE, .remote = PLAN_NONE
	};
	return a;
}

static size_t find_local(const struct plan_input *in, const char *base)
{
	size_t lo = 0, hi = in->nlocal;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(in->local[mid].base, base);
		if (c == 0)
			return mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return PLAN_NONE;
}

static size_t find_remote(const struct plan_input *in, uint32_t uid)
{
	size_t lo = 0, hi = in->nremote;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (in->remote[mid].uid == uid)
			return mid;
		if (in->remote[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return PLAN_NONE;
}

static bool is_vanished(const struct plan_input *in, uint32_t uid)
{
	size_t lo = 0, hi = in->nvanished;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (in->vanished[mid] == uid)
			return true;
		if (in->vanished[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* Marks the file at li used, with any twin of the same base next to it: one
 * message a reader left under two names (scan marks them dup) is one message. */
static void use_local(struct planner *pl, size_t li)
{
	const struct plan_input *in = pl->in;
	size_t lo = li, hi = li;
	while (lo > 0 && strcmp(in->local[lo - 1].base, in->local[li].base) == 0)
		lo--;
	while (hi + 1 < in->nlocal && strcmp(in->local[hi + 1].base, in->local[li].base) == 0)
		hi++;
	for (size_t k = lo; k <= hi; k++)
		pl->local_used[k] = true;
}

static void push(struct idxvec *iv, size_t x)
{
	iv->v = xgrow(iv->v, &iv->cap, iv->n + 1, sizeof(*iv->v));
	iv->v[iv->n++] = x;
}

/* Both sides hold the message: make their flags agree. s is what the state
 * says both had; flags the server cannot store count as unchanged there. */
static void reconcile(struct planner *pl, size_t row, size_t local, uint32_t uid,
		      const char *base, unsigned s, unsigned l, unsigned r)
{
	unsigned mask = pl->in->server_flags;
	r = (r & mask) | (s & ~mask);
	unsigned m = plan_merge_flags(s, l, r);
	if ((m ^ r) & mask) {
		struct plan_action *a = emit(pl->out, OP_PUSH_FLAGS);
		a->row = row, a->local = local, a->uid = uid, a->base = base, a->flags = m;
		a->add = m & ~r & mask;
		a->remove = r & ~m & mask;
	}
	if (m != l) {
		struct plan_action *a = emit(pl->out, OP_LOCAL_FLAGS);
		a->row = row, a->local = local, a->uid = uid, a->base = base, a->flags = m;
	}
	if (m != s) {
		struct plan_action *a = emit(pl->out, OP_SAVE_FLAGS);
		a->row = row, a->local = local, a->uid = uid, a->base = base, a->flags = m;
	}
}

/* Where the row's message is on the server: *present and its flags. */
static void remote_side(struct planner *pl, const struct plan_row *row, bool *present,
			unsigned *flags)
{
	const struct plan_input *in = pl->in;
	size_t ri = find_remote(in, row->uid);
	if (ri != PLAN_NONE)
		pl->remote_used[ri] = true;
	if (in->remote_full || ri != PLAN_NONE) {
		*present = ri != PLAN_NONE;
		*flags = ri != PLAN_NONE ? in->remote[ri].flags : 0;
	} else {
		*present = !is_vanished(in, row->uid);
		*flags = row->flags; /* a delta names every change */
	}
}

static void merge_row(struct planner *pl, size_t i)
{
	const struct plan_input *in = pl->in;
	const struct plan_row *row = &in->rows[i];
	bool lp = true, rp;
	unsigned lf = row->flags, rf;
	size_t li = PLAN_NONE;
	if (!in->local_unchanged) {
		li = find_local(in, row->base);
		lp = li != PLAN_NONE;
		if (lp) {
			use_local(pl, li);
			lf = in->local[li].flags;
		}
	}
	if (row->uid == 0) {
		push(&pl->pool_rows, i);
		return;
	}
	remote_side(pl, row, &rp, &rf);
	if (lp && rp)
		reconcile(pl, i, li, row->uid, row->base, row->flags, lf, rf);
	else if (lp)
		push(&pl->del_local, i);
	else if (rp)
		push(&pl->del_remote, i);
	else {
		struct plan_action *a = emit(pl->out, OP_FORGET);
		a->row = i, a->uid = row->uid, a->base = row->base;
	}
}

/* ---- pairing what no row knows by Message-ID and size ---- */

static bool has_msgid(const struct plan_ident *id)
{
	return id->msgid && id->msgid[0];
}

/* By Message-ID and size; without a Message-ID by size and body hash (those
 * without a hash first). */
static int ident_cmp(const struct plan_ident *a, const struct plan_ident *b)
{
	int c = strcmp(has_msgid(a) ? a->msgid : "", has_msgid(b) ? b->msgid : "");
	if (c == 0)
		c = (a->size > b->size) - (a->size < b->size);
	if (c != 0 || has_msgid(a))
		return c;
	if (!a->hash || !b->hash)
		return (a->hash != NULL) - (b->hash != NULL);
	return memcmp(a->hash, b->hash, PLAN_HASH_LEN);
}

static int remote_ident_cmp(const void *a, const void *b, void *ctx)
{
	const struct plan_input *in = ctx;
	const struct plan_remote *ra = &in->remote[*(const size_t *)a];
	const struct plan_remote *rb = &in->remote[*(const size_t *)b];
	int c = ident_cmp(&ra->id, &rb->id);
	return c ? c : (ra->uid > rb->uid) - (ra->uid < rb->uid);
}

static bool pairable(const struct plan_ident *id)
{
	return has_msgid(id) || id->hash;
}

/* The first unused new server message with this identity, or PLAN_NONE. */
static size_t take_remote(struct planner *pl, const struct plan_ident *id)
{
	if (!pairable(id))
		return PLAN_NONE;
	const struct idxvec *pool = &pl->pool_remote;
	size_t lo = 0, hi = pool->n;
	while (lo < hi) { /* the first entry not below id */
		size_t mid = lo + (hi - lo) / 2;
		if (ident_cmp(&pl->in->remote[pool->v[mid]].id, id) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < pool->n; lo++) {
		size_t ri = pool->v[lo];
		if (ident_cmp(&pl->in->remote[ri].id, id) != 0)
			break;
		if (!pl->remote_used[ri]) {
			pl->remote_used[ri] = true;
			return ri;
		}
	}
	return PLAN_NONE;
}

static void pair_rows(struct planner *pl)
{
	const struct plan_input *in = pl->in;
	if (pl->pool_rows.n)
		pl->rematched = xcalloc(in->nrows, sizeof(uint32_t));
	for (size_t k = 0; k < pl->pool_rows.n; k++) {
		size_t i = pl->pool_rows.v[k];
		const struct plan_row *row = &in->rows[i];
		size_t li = in->local_unchanged ? PLAN_NONE : find_local(in, row->base);
		bool lp = in->local_unchanged || li != PLAN_NONE;
		unsigned lf = li != PLAN_NONE ? in->local[li].flags : row->flags;
		size_t ri = take_remote(pl, &row->id);
		if (ri == PLAN_NONE) {
			struct plan_action *a = emit(pl->out, lp ? OP_UPLOAD : OP_FORGET);
			a->row = i, a->local = li, a->base = row->base, a->flags = lf;
			continue;
		}
		const struct plan_remote *r = &in->remote[ri];
		pl->rematched[i] = r->uid;
		if (!lp) {
			/* The file is gone: the copy is expunged by its UID, and the
			 * row goes with it, unsettled. A settled row whose expunge
			 * was cut off after its \Deleted would look to the next
			 * pass like a message moved to wherever a file of its name
			 * turned up, and the move would carry \Deleted along. */
			push(&pl->del_remote, i);
			continue;
		}
		struct plan_action *a = emit(pl->out, OP_PAIR);
		a->row = i, a->local = li, a->remote = ri, a->uid = r->uid, a->base = row->base;
		a->flags = row->flags;
		reconcile(pl, i, li, r->uid, row->base, row->flags, lf, r->flags);
	}
}

static void pair_new(struct planner *pl)
{
	const struct plan_input *in = pl->in;
	for (size_t k = 0; k < pl->pool_local.n; k++) {
		size_t li = pl->pool_local.v[k];
		const struct plan_local *l = &in->local[li];
		size_t ri = take_remote(pl, &l->id);
		if (ri == PLAN_NONE) {
			struct plan_action *a = emit(pl->out, OP_UPLOAD);
			a->local = li, a->base = l->base, a->flags = l->flags;
			continue;
		}
		const struct plan_remote *r = &in->remote[ri];
		/* No common ancestor: start from what both carry, so each side's
		 * extra flags count as changes and the union results. */
		unsigned common = l->flags & r->flags;
		struct plan_action *a = emit(pl->out, OP_PAIR);
		a->local = li, a->remote = ri, a->uid = r->uid, a->base = l->base, a->flags = common;
		reconcile(pl, PLAN_NONE, li, r->uid, l->base, common, l->flags, r->flags);
	}
	for (size_t ri = 0; ri < in->nremote; ri++) {
		if (pl->remote_used[ri])
			continue;
		struct plan_action *a = emit(pl->out, OP_DOWNLOAD);
		a->remote = ri, a->uid = in->remote[ri].uid, a->flags = in->remote[ri].flags;
	}
}

/* ---- deletes, behind the mass-deletion guard ---- */

static bool guarded(const struct plan_input *in, size_t deletes)
{
	if (in->allow_mass_delete || in->nrows <= in->min_mass_delete)
		return false;
	return (double)deletes > in->max_delete_share * (double)in->nrows;
}

static void emit_deletes(struct planner *pl, const struct idxvec *rows, enum plan_op op,
			 size_t *guarded_out)
{
	if (guarded(pl->in, rows->n)) {
		*guarded_out = rows->n;
		return;
	}
	for (size_t k = 0; k < rows->n; k++) {
		size_t i = rows->v[k];
		const struct plan_row *row = &pl->in->rows[i];
		struct plan_action *a = emit(pl->out, op);
		/* A row paired again just now (its upload cut off, its file gone
		 * since) has no UID of its own yet: its copy's goes. */
		uint32_t uid = pl->rematched && pl->rematched[i] ? pl->rematched[i] : row->uid;
		a->row = i, a->uid = uid, a->base = row->base, a->flags = row->flags;
		a->unsettled = row->uid == 0;
	}
}

void plan_folder(const struct plan_input *in, struct plan *out)
{
	struct planner pl = { .in = in, .out = out };
	pl.local_used = xcalloc(in->nlocal + 1, sizeof(bool));
	pl.remote_used = xcalloc(in->nremote + 1, sizeof(bool));
	out->guarded_local = out->guarded_remote = 0;

	for (size_t i = 0; i < in->nrows; i++)
		merge_row(&pl, i);
	for (size_t li = 0; li < in->nlocal && !in->local_unchanged; li++) {
		if (!pl.local_used[li])
			push(&pl.pool_local, li);
		use_local(&pl, li);
	}
	for (size_t ri = 0; ri < in->nremote; ri++)
		if (!pl.remote_used[ri] && pairable(&in->remote[ri].id))
			push(&pl.pool_remote, ri);
	if (pl.pool_remote.n)
		qsort_r(pl.pool_remote.v, pl.pool_remote.n, sizeof(size_t), remote_ident_cmp,
			(void *)in);
	pair_rows(&pl);
	pair_new(&pl);
	emit_deletes(&pl, &pl.del_local, OP_DELETE_LOCAL, &out->guarded_local);
	emit_deletes(&pl, &pl.del_remote, OP_DELETE_REMOTE, &out->guarded_remote);

	free(pl.local_used);
	free(pl.remote_used);
	free(pl.pool_rows.v);
	free(pl.pool_local.v);
	free(pl.pool_remote.v);
	free(pl.del_local.v);
	free(pl.del_remote.v);
	free(pl.rematched);
}

void plan_free(struct plan *p)
{
	free(p->v);
	*p = (struct plan){ 0 };
}
