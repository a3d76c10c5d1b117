/* Reading message rows into one array: each query fills a struct state_msgs
 * whose strings and hashes live in a few large blocks, so loading a 100,000
 * message folder costs one query and a handful of allocations. */
#include "state/internal.h"

#include "core/xalloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Text storage for a list: blocks that never move, so rows can point in.
 * Reloading a list reuses its blocks (and its array): the engine reloads the
 * same folders sync after sync, and fresh memory costs more to touch than
 * the query costs to run. */
struct state_arena {
	struct state_arena *next;
	size_t used, cap;
	char data[];
};

#define ARENA_BLOCK (1024 * 1024 - sizeof(struct state_arena))

static struct state_arena *block_new(size_t cap, struct state_arena *next)
{
	struct state_arena *a = xmalloc(sizeof(*a) + cap);
	a->next = next;
	a->used = 0;
	a->cap = cap;
	return a;
}

/* l->arena is the block being filled; the blocks after it were filled by an
 * earlier load and are emptied as they are reached again. */
static void *arena_copy(struct state_msgs *l, const void *p, size_t n, size_t extra)
{
	size_t need = n + extra;
	struct state_arena *a = l->arena;
	if (!a) {
		a = l->arena = block_new(need > ARENA_BLOCK ? need : ARENA_BLOCK, NULL);
		l->arena_head = a;
	}
	while (a->cap - a->used < need) {
		if (!a->next || a->next->cap < need)
			a->next = block_new(need > ARENA_BLOCK ? need : ARENA_BLOCK, a->next);
		a = l->arena = a->next;
		a->used = 0;
	}
	char *d = a->data + a->used;
	memcpy(d, p, n);
	memset(d + n, 0, extra);
	a->used += need;
	return d;
}

/* Empties l, keeping its memory for the next load. */
static void msgs_reset(struct state_msgs *l)
{
	l->n = 0;
	l->arena = l->arena_head;
	if (l->arena)
		l->arena->used = 0;
}

static const char *copy_text(struct state_msgs *l, sqlite3_stmt *s, int col)
{
	const unsigned char *t = sqlite3_column_text(s, col);
	if (!t)
		return NULL;
	return arena_copy(l, t, (size_t)sqlite3_column_bytes(s, col), 1);
}

/* Reads a row of MSG_COLUMNS onto the end of l. */
static void read_msg(sqlite3_stmt *s, struct state_msgs *l)
{
	l->v = xgrow(l->v, &l->cap, l->n + 1, sizeof(*l->v));
	struct state_msg *m = &l->v[l->n++];
	m->folder = sqlite3_column_int64(s, 0);
	m->base = copy_text(l, s, 1);
	m->msgid = copy_text(l, s, 2);
	const void *hash = sqlite3_column_blob(s, 3);
	m->hash_len = hash ? (size_t)sqlite3_column_bytes(s, 3) : 0;
	m->hash = hash ? arena_copy(l, hash, m->hash_len, 0) : NULL;
	m->size = (uint64_t)sqlite3_column_int64(s, 4);
	m->uid = (uint32_t)sqlite3_column_int64(s, 5);
	m->flags = (uint32_t)sqlite3_column_int64(s, 6);
	m->state = (enum state_msg_state)sqlite3_column_int(s, 7);
	m->since_uid = (uint32_t)sqlite3_column_int64(s, 8);
	m->src_folder = sqlite3_column_int64(s, 9);
	m->src_uid = (uint32_t)sqlite3_column_int64(s, 10);
}

/* Steps s (already bound) into out, replacing what out held. */
static int read_all(struct state *st, sqlite3_stmt *s, struct state_msgs *out, const char *what,
		    struct err *err)
{
	msgs_reset(out);
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		read_msg(s, out);
	if (rc != SQLITE_DONE) {
		msgs_reset(out);
		return db_fail(st, s, rc, what, err);
	}
	db_done(s);
	return 0;
}

/* A folder's rows by SQL_MSG_LOAD or SQL_MSG_LOAD_LEAN. */
static int load_folder(struct state *st, enum stmt_id id, int64_t folder, struct state_msgs *out,
		       struct err *err)
{
	/* Sizing the array first spares copying it while it doubles. */
	size_t n = 0;
	int rc = state_msg_count(st, folder, &n, err);
	if (rc)
		return rc;
	out->v = xgrow(out->v, &out->cap, n, sizeof(*out->v));
	sqlite3_stmt *s = db_stmt(st, id, err);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, folder);
	return read_all(st, s, out, "loading a folder's messages", err);
}

int state_msg_load(struct state *st, int64_t folder, struct state_msgs *out, struct err *err)
{
	return load_folder(st, SQL_MSG_LOAD, folder, out, err);
}

int state_msg_load_lean(struct state *st, int64_t folder, struct state_msgs *out, struct err *err)
{
	return load_folder(st, SQL_MSG_LOAD_LEAN, folder, out, err);
}

int state_msg_pending(struct state *st, struct state_msgs *out, struct err *err)
{
	sqlite3_stmt *s = db_stmt(st, SQL_MSG_PENDING, err);
	if (!s)
		return -EIO;
	return read_all(st, s, out, "listing pending messages", err);
}

int state_msg_find_base(struct state *st, const char *base, struct state_msgs *out,
			struct err *err)
{
	sqlite3_stmt *s = db_stmt(st, SQL_MSG_FIND_BASE, err);
	if (!s)
		return -EIO;
	db_bind_text(s, 1, base);
	return read_all(st, s, out, "looking up a base name", err);
}

int state_msg_find_msgid(struct state *st, const char *msgid, uint64_t size,
			 struct state_msgs *out, struct err *err)
{
	sqlite3_stmt *s = db_stmt(st, size ? SQL_MSG_FIND_MSGID_SIZE : SQL_MSG_FIND_MSGID, err);
	if (!s)
		return -EIO;
	db_bind_text(s, 1, msgid);
	if (size)
		sqlite3_bind_int64(s, 2, (int64_t)size);
	return read_all(st, s, out, "looking up a Message-ID", err);
}

int state_msg_count(struct state *st, int64_t folder, size_t *out, struct err *err)
{
	sqlite3_stmt *s = db_stmt(st, SQL_MSG_COUNT, err);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, folder);
	int rc = sqlite3_step(s);
	if (rc != SQLITE_ROW)
		return db_fail(st, s, rc, "counting messages", err);
	*out = (size_t)sqlite3_column_int64(s, 0);
	db_done(s);
	return 0;
}

const struct state_msg *state_msgs_uid(const struct state_msgs *l, uint32_t uid)
{
	if (!uid)
		return NULL;
	size_t lo = 0, hi = l->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (l->v[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < l->n && l->v[lo].uid == uid ? &l->v[lo] : NULL;
}

void state_msgs_free(struct state_msgs *l)
{
	while (l->arena_head) {
		struct state_arena *next = l->arena_head->next;
		free(l->arena_head);
		l->arena_head = next;
	}
	l->arena = NULL;
	xfree(&l->v);
	l->n = l->cap = 0;
}
