#include "sync/moves.h"

#include "core/log.h"
#include "core/xalloc.h"
#include "imap/seqset.h"
#include "maildir/digest.h"
#include "maildir/msgfile.h"
#include "maildir/scan.h"

#include <stdlib.h>
#include <string.h>

/* A message gone from its folder's Maildir, and a file no row knows. */
struct gone {
	size_t folder;
	uint32_t uid;
	char *base, *msgid;
	unsigned char hash[MAILDIR_HASH_LEN];
	bool has_hash, taken;
};

struct arrived {
	size_t folder;
	char *base;
	bool in_new;
	char *file;
};

struct moves {
	struct sync_pool *pool;
	struct state *st;
	const struct account_conf *a;
	struct moves_folder *f;
	size_t nf;
	moves_done_cb done;
	void *ctx;

	struct gone *gone;
	size_t ngone, capgone;
	struct arrived *arrived;
	size_t narrived, caparrived;
	unsigned moved;
	int rc;
	struct err err;

	/* carrying out: one source folder at a time */
	struct state_msgs pending;
	size_t next; /* index into pending of the next group */
	struct imap_client *c;
	int64_t src; /* the group's source folder */
	unsigned inflight;
};

static void fail(struct moves *m, int rc, const struct err *e)
{
	log_error("account=%s moves: %s", m->a->name, e->msg);
	if (m->rc == 0) {
		m->rc = rc < 0 ? rc : -EIO;
		m->err = *e;
	}
}

static size_t folder_index(const struct moves *m, int64_t id)
{
	for (size_t i = 0; i < m->nf; i++)
		if (m->f[i].row->id == id)
			return i;
	return (size_t)-1;
}

/* ---- detecting ---- */

static bool stamp_unchanged(const struct state_folder *row, const struct maildir_stamp *s)
{
	return row->new_mtime.tv_sec && s->new_mtime.tv_sec == row->new_mtime.tv_sec &&
	       s->new_mtime.tv_nsec == row->new_mtime.tv_nsec &&
	       s->cur_mtime.tv_sec == row->cur_mtime.tv_sec &&
	       s->cur_mtime.tv_nsec == row->cur_mtime.tv_nsec;
}

static int base_cmp(const void *a, const void *b, void *ctx)
{
	const struct state_msgs *rows = ctx;
	return strcmp(rows->v[*(const size_t *)a].base, rows->v[*(const size_t *)b].base);
}

static const struct state_msg *row_by_base(const struct state_msgs *rows, const size_t *idx,
					   const char *base)
{
	size_t lo = 0, hi = rows->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(rows->v[idx[mid]].base, base);
		if (c == 0)
			return &rows->v[idx[mid]];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Compares one folder's Maildir with its rows: what left, what came. A
 * folder whose directories did not change has neither, and is not even
 * listed (a pass with nothing to do would read every directory of the tree). */
static int survey(struct moves *m, size_t fi, struct err *e)
{
	struct moves_folder *f = &m->f[fi];
	struct maildir *md;
	struct maildir_stamp stamp;
	struct maildir_scan *scan = NULL;
	struct state_msgs rows = { 0 };
	if (maildir_open(&md, f->path, f->row->name, e) < 0)
		return 0; /* no Maildir yet: nothing left it */
	int rc = maildir_stamp_read(md, &stamp, e);
	if (rc < 0 || stamp_unchanged(f->row, &stamp))
		goto out;
	rc = maildir_scan(md, 0, &scan, e);
	if (rc == 0 && !stamp_unchanged(f->row, &scan->stamp))
		rc = state_msg_load(m->st, f->row->id, &rows, e);
	if (rc < 0 || rows.n + scan->n == 0 || stamp_unchanged(f->row, &scan->stamp))
		goto out;
	size_t *idx = xcalloc(rows.n + 1, sizeof(size_t));
	for (size_t i = 0; i < rows.n; i++)
		idx[i] = i;
	qsort_r(idx, rows.n, sizeof(size_t), base_cmp, &rows);
	for (size_t i = 0; i < scan->n; i++) {
		const struct maildir_entry *x = &scan->v[i];
		if (row_by_base(&rows, idx, x->base))
			continue;
		m->arrived = xgrow(m->arrived, &m->caparrived, m->narrived + 1, sizeof(*m->arrived));
		m->arrived[m->narrived++] = (struct arrived){ fi, xstrdup(x->base), x->in_new,
							       xstrdup(x->file) };
	}
	free(idx);
	for (size_t i = 0; i < rows.n; i++) {
		const struct state_msg *r = &rows.v[i];
		size_t lo = 0, hi = scan->n;
		bool present = false;
		while (lo < hi && !present) {
			size_t mid = lo + (hi - lo) / 2;
			int c = strcmp(scan->v[mid].base, r->base);
			present = c == 0;
			if (c < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		/* A download killed between its rename and its settle has its file
		 * in place: a reader may have moved it since, as any other. */
		if (present || r->uid == 0 ||
		    (r->state != STATE_SYNCED && r->state != STATE_DOWNLOADING))
			continue;
		m->gone = xgrow(m->gone, &m->capgone, m->ngone + 1, sizeof(*m->gone));
		struct gone *g = &m->gone[m->ngone++];
		*g = (struct gone){ .folder = fi, .uid = r->uid, .base = xstrdup(r->base),
				    .msgid = r->msgid ? xstrdup(r->msgid) : NULL,
				    .has_hash = r->hash && r->hash_len == MAILDIR_HASH_LEN };
		if (g->has_hash)
			memcpy(g->hash, r->hash, MAILDIR_HASH_LEN);
	}
out:
	state_msgs_free(&rows);
	maildir_scan_free(&scan);
	maildir_free(&md);
	return rc;
}

/* The departed message an arrival is, if any: same base name (a rename),
 * else same Message-ID and body hash (a save that rewrote the headers). */
static struct gone *match(struct moves *m, const struct arrived *a)
{
	for (size_t i = 0; i < m->ngone; i++) {
		struct gone *g = &m->gone[i];
		if (!g->taken && g->folder != a->folder && strcmp(g->base, a->base) == 0)
			return g;
	}
	bool any = false;
	for (size_t i = 0; i < m->ngone && !any; i++)
		any = !m->gone[i].taken && m->gone[i].msgid && m->gone[i].has_hash;
	if (!any)
		return NULL;
	struct maildir *md;
	struct maildir_msg *msg;
	struct maildir_ident id;
	struct err e;
	if (maildir_open(&md, m->f[a->folder].path, m->f[a->folder].row->name, &e) < 0)
		return NULL;
	int rc = maildir_msg_open(&msg, md, a->in_new, a->file, &e);
	if (rc == 0) {
		rc = maildir_msg_inspect(msg, &id, NULL, &e);
		maildir_msg_free(&msg);
	}
	maildir_free(&md);
	if (rc < 0 || !id.message_id[0])
		return NULL;
	for (size_t i = 0; i < m->ngone; i++) {
		struct gone *g = &m->gone[i];
		if (!g->taken && g->folder != a->folder && g->msgid && g->has_hash &&
		    strcmp(g->msgid, id.message_id) == 0 &&
		    memcmp(g->hash, id.body_hash, MAILDIR_HASH_LEN) == 0)
			return g;
	}
	return NULL;
}

static int record_moves(struct moves *m, struct err *e)
{
	if (m->ngone == 0 || m->narrived == 0)
		return 0;
	int rc = state_begin(m->st, e);
	for (size_t i = 0; i < m->narrived && rc == 0; i++) {
		const struct arrived *a = &m->arrived[i];
		struct gone *g = match(m, a);
		if (!g)
			continue;
		g->taken = true;
		const struct state_folder *dst = m->f[a->folder].row;
		rc = state_msg_move(m->st, m->f[g->folder].row->id, g->uid, dst->id, a->base,
				    dst->uidnext, e);
		log_debug("account=%s event=move-detected from=\"%s\" uid=%u to=\"%s\" file=%s",
			  m->a->name, m->f[g->folder].row->name, g->uid, dst->name, a->base);
	}
	return rc == 0 ? state_commit(m->st, e) : rc;
}

/* ---- carrying out ---- */

static void next_group(struct moves *m);

/* A destination's job uploads a moved file whose move is unsettled (the
 * way out when the original vanished): not while the original may still be
 * in a source that is held, or the message would be on the server twice. */
static void hold_destinations(struct moves *m)
{
	for (size_t i = 0; i < m->pending.n; i++) {
		const struct state_msg *r = &m->pending.v[i];
		size_t src = r->src_folder ? folder_index(m, r->src_folder) : (size_t)-1;
		size_t dst = folder_index(m, r->folder);
		if (r->state == STATE_MOVING && src != (size_t)-1 && dst != (size_t)-1 &&
		    m->f[src].hold)
			m->f[dst].hold = true;
	}
}

static void finish(struct moves *m)
{
	hold_destinations(m);
	if (m->c)
		pool_release(m->pool, m->c);
	for (size_t i = 0; i < m->ngone; i++) {
		free(m->gone[i].base);
		free(m->gone[i].msgid);
	}
	for (size_t i = 0; i < m->narrived; i++) {
		free(m->arrived[i].base);
		free(m->arrived[i].file);
	}
	free(m->gone);
	free(m->arrived);
	state_msgs_free(&m->pending);
	m->done(m->ctx, m->moved, m->rc, m->rc < 0 ? &m->err : NULL);
	free(m);
}

/* The move of the source folder's message uid: a source UID is moved once,
 * so it names its destination too. */
static const struct state_msg *pending_move(const struct moves *m, int64_t src, uint32_t uid)
{
	for (size_t i = 0; i < m->pending.n; i++) {
		const struct state_msg *r = &m->pending.v[i];
		if (r->state == STATE_MOVING && r->src_folder == src && r->src_uid == uid)
			return r;
	}
	return NULL;
}

/* Whether the destination's UIDs are of COPYUID's UIDVALIDITY: 1 yes, 0 no
 * (the copy is then matched by the folder job), or a negative errno. A
 * folder never selected yet adopts it, or its first SELECT would take the
 * UIDs settled here for stale ones and forget them. */
static int dest_uidvalidity(struct moves *m, int64_t folder, uint32_t uidvalidity,
			    struct err *e)
{
	size_t i = folder_index(m, folder);
	if (i == (size_t)-1)
		return 0;
	struct state_folder *f = m->f[i].row;
	if (f->uidvalidity == 0) {
		int rc = state_folder_set_uidvalidity(m->st, folder, uidvalidity, e);
		if (rc < 0)
			return rc;
		f->uidvalidity = uidvalidity;
	}
	return f->uidvalidity == uidvalidity;
}

/* [COPYUID uidvalidity src-set dst-set]: the n-th source UID became the
 * n-th destination UID (RFC 4315 section 3). Taken only from a server that
 * offers UIDPLUS, so that the path without it is the one tested against
 * Dovecot with UIDPLUS cut (which sends COPYUID all the same). The rows are found by source
 * UID, not by the command the response came with: Dovecot sends the
 * untagged COPYUIDs of pipelined MOVEs before the first one completes. */
static void settle_copyuid(struct moves *m, const struct imap_response *r)
{
	struct imap_seqset from = { 0 }, to = { 0 };
	const char *a, *b;
	size_t alen, blen;
	uint64_t uidvalidity;
	if (!imap_client_has(m->c, CAP_UIDPLUS) || !imap_response_code_is(r, "COPYUID") ||
	    r->ncode_args < 3 ||
	    !imap_value_number(&r->code_args[0], &uidvalidity) || uidvalidity == 0 ||
	    uidvalidity > UINT32_MAX || !(a = imap_value_astring(&r->code_args[1], &alen)) ||
	    !(b = imap_value_astring(&r->code_args[2], &blen)) ||
	    imap_seqset_parse(&from, a, alen, 0, NULL) < 0 ||
	    imap_seqset_parse(&to, b, blen, 0, NULL) < 0)
		goto out;
	struct imap_seqset_iter fi, ti;
	uint32_t su, du;
	struct err e;
	imap_seqset_iter_init(&fi, &from);
	imap_seqset_iter_init(&ti, &to);
	int rc = state_begin(m->st, &e);
	while (rc == 0 && imap_seqset_iter_next(&fi, &su) && imap_seqset_iter_next(&ti, &du)) {
		const struct state_msg *row = pending_move(m, m->src, su);
		if (!row || (rc = dest_uidvalidity(m, row->folder, (uint32_t)uidvalidity, &e)) <= 0)
			continue;
		rc = state_msg_settle(m->st, row->folder, STATE_BASE(row->base), du, &e);
	}
	rc = rc == 0 ? state_commit(m->st, &e) : rc;
	if (rc < 0)
		fail(m, rc, &e);
out:
	imap_seqset_free(&from);
	imap_seqset_free(&to);
}

struct move_cmd {
	struct moves *m;
	unsigned moving;    /* messages it moves or copies (its COPYUID names the copies) */
	char *expunge;	    /* a COPY's or STORE's UID set, for the next step once it succeeds */
	const char *target; /* the destination's name, or NULL */
	bool marks;	    /* the STORE of \Deleted: the expunge follows it */
};

static void send_move(struct moves *m, const char *verb, const char *set, const char *target,
		      unsigned moving, const char *after, const char *expunge);

/* Without MOVE: the originals go once the server has the copies, not before,
 * or a refused COPY would leave the message nowhere on the server. They are
 * marked \Deleted first; the expunge waits for that STORE to complete, as a
 * server may run pipelined UID commands side by side (sync/apply.c). */
static void mark_originals(struct moves *m, const char *set)
{
	send_move(m, "UID STORE", set, NULL, 0, " +FLAGS.SILENT (\\Deleted)", set);
}

static void expunge_originals(struct moves *m, const char *set)
{
	if (imap_client_has(m->c, CAP_UIDPLUS))
		send_move(m, "UID EXPUNGE", set, NULL, 0, NULL, NULL);
	else
		send_move(m, "EXPUNGE", "", NULL, 0, NULL, NULL);
}

/* RFC 6851 section 4.3: MOVE reports COPYUID in an untagged OK before its
 * expunges; the claim routes it to the oldest MOVE still running, which may
 * be another MOVE of the same source folder (settle_copyuid copes). */
static void on_move_ok(void *ctx, struct imap_response *r)
{
	struct move_cmd *mc = ctx;
	if (mc->moving)
		settle_copyuid(mc->m, r);
}

static void on_move_done(void *ctx, const struct imap_reply *reply)
{
	struct move_cmd *mc = ctx;
	struct moves *m = mc->m;
	if (reply->status != IMAP_STATUS_OK) {
		struct err e = reply->err;
		if (mc->target)
			err_prefix(&e, "moving to \"%s\"", mc->target);
		err_prefix(&e, "folder %s", m->f[folder_index(m, m->src)].row->name);
		fail(m, -EPROTO, &e);
		/* The originals may still be there: syncing the source now would
		 * fetch them as new messages while the moved files upload. */
		m->f[folder_index(m, m->src)].hold = true;
	} else {
		m->moved += mc->moving;
		if (mc->moving)
			settle_copyuid(m, reply->tagged);
		if (mc->expunge && mc->marks)
			expunge_originals(m, mc->expunge);
		else if (mc->expunge)
			mark_originals(m, mc->expunge);
	}
	free(mc->expunge);
	free(mc);
	if (--m->inflight == 0)
		next_group(m);
}

static void send_move(struct moves *m, const char *verb, const char *set, const char *target,
		      unsigned moving, const char *after, const char *expunge)
{
	struct imap_cmd *cmd = imap_cmd_new(m->c, "%s %s", verb, set);
	struct err e;
	if (target && imap_cmd_mailbox(cmd, target, &e) < 0) {
		imap_cmd_free(&cmd);
		fail(m, -EINVAL, &e);
		return;
	}
	if (after)
		imap_cmd_add(cmd, "%s", after);
	struct move_cmd *mc = xcalloc(1, sizeof(*mc));
	*mc = (struct move_cmd){ m, moving, expunge ? xstrdup(expunge) : NULL, target,
				 strcmp(verb, "UID STORE") == 0 };
	if (strcmp(verb, "UID MOVE") == 0)
		imap_cmd_claim(cmd, "OK", on_move_ok);
	m->inflight++;
	imap_cmd_send(cmd, on_move_done, mc);
}

/* Moves of one source folder to one destination: UID MOVE (RFC 6851), or
 * COPY, then \Deleted + EXPUNGE, where MOVE is missing. */
static void move_to(struct moves *m, int64_t dst, const uint32_t *uids, size_t n)
{
	const char *target = m->f[folder_index(m, dst)].row->name;
	struct imap_seqset set = { 0 };
	struct buf b = { 0 };
	imap_seqset_from_sorted(&set, uids, n);
	imap_seqset_format(&b, &set, 0, (size_t)-1);
	if (imap_client_has(m->c, CAP_MOVE))
		send_move(m, "UID MOVE", buf_str(&b), target, (unsigned)n, NULL, NULL);
	else
		send_move(m, "UID COPY", buf_str(&b), target, (unsigned)n, NULL, buf_str(&b));
	buf_free(&b);
	imap_seqset_free(&set);
}

static int uid_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

static void on_selected(void *ctx, const struct imap_reply *reply)
{
	struct moves *m = ctx;
	m->inflight--;
	if (reply->status != IMAP_STATUS_OK) {
		struct err e = reply->err;
		err_prefix(&e, "folder %s", m->f[folder_index(m, m->src)].row->name);
		fail(m, -EPROTO, &e);
		m->f[folder_index(m, m->src)].hold = true;
		next_group(m);
		return;
	}
	/* One command per destination, with the source UIDs in order. */
	for (size_t i = 0; i < m->pending.n; i++) {
		const struct state_msg *r = &m->pending.v[i];
		if (r->state != STATE_MOVING || r->src_folder != m->src)
			continue;
		bool first = true;
		for (size_t k = 0; k < i && first; k++)
			first = !(m->pending.v[k].state == STATE_MOVING &&
				  m->pending.v[k].src_folder == m->src &&
				  m->pending.v[k].folder == r->folder);
		if (!first || folder_index(m, r->folder) == (size_t)-1)
			continue;
		uint32_t *uids = xcalloc(m->pending.n, sizeof(uint32_t));
		size_t n = 0;
		for (size_t k = i; k < m->pending.n; k++) {
			const struct state_msg *q = &m->pending.v[k];
			if (q->state == STATE_MOVING && q->src_folder == m->src &&
			    q->folder == r->folder)
				uids[n++] = q->src_uid;
		}
		qsort(uids, n, sizeof(uint32_t), uid_cmp);
		move_to(m, r->folder, uids, n);
		free(uids);
	}
	if (m->inflight == 0)
		next_group(m);
}

static void select_source(struct moves *m)
{
	struct imap_cmd *cmd = imap_cmd_new(m->c, "SELECT");
	struct err e;
	if (imap_cmd_mailbox(cmd, m->f[folder_index(m, m->src)].row->name, &e) < 0) {
		imap_cmd_free(&cmd);
		fail(m, -EINVAL, &e);
		m->f[folder_index(m, m->src)].hold = true;
		next_group(m);
		return;
	}
	m->inflight++;
	imap_cmd_send(cmd, on_selected, m);
}

static void on_conn(void *ctx, struct imap_client *c, const struct err *err)
{
	struct moves *m = ctx;
	if (!c) {
		fail(m, -EIO, err);
		for (size_t i = 0; i < m->pending.n; i++)
			if (m->pending.v[i].state == STATE_MOVING && m->pending.v[i].src_folder)
				m->f[folder_index(m, m->pending.v[i].src_folder)].hold = true;
		finish(m);
		return;
	}
	m->c = c;
	select_source(m);
}

static void ignore(void *ctx, struct imap_response *r)
{
	(void)ctx;
	(void)r;
}

/* The next source folder with moves to carry out (in the order of the
 * pending rows); each is handled once. */
static void next_group(struct moves *m)
{
	while (m->next < m->pending.n) {
		const struct state_msg *r = &m->pending.v[m->next++];
		if (r->state != STATE_MOVING || !r->src_folder ||
		    folder_index(m, r->src_folder) == (size_t)-1)
			continue;
		bool seen = false;
		for (size_t k = 0; k + 1 < m->next && !seen; k++)
			seen = m->pending.v[k].state == STATE_MOVING &&
			       m->pending.v[k].src_folder == r->src_folder;
		if (seen)
			continue;
		m->src = r->src_folder;
		if (m->c) {
			select_source(m);
		} else {
			struct pool_user user = { ignore, m };
			pool_acquire(m->pool, 0, &user, on_conn, m);
		}
		return;
	}
	finish(m);
}

void moves_run(struct sync_pool *pool, struct state *st, const struct account_conf *a,
	       struct moves_folder *folders, size_t n, moves_done_cb done, void *ctx)
{
	struct moves *m = xcalloc(1, sizeof(*m));
	*m = (struct moves){ .pool = pool, .st = st, .a = a, .f = folders, .nf = n,
			     .done = done, .ctx = ctx };
	struct err e;
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = survey(m, i, &e);
	if (rc == 0)
		rc = record_moves(m, &e);
	if (rc == 0)
		rc = state_msg_pending(st, &m->pending, &e);
	if (rc < 0)
		fail(m, rc, &e);
	next_group(m);
}
