/* The rows of POP3 accounts: what was fetched, by the server's unique-id. */
#include "state/internal.h"

#include "core/xalloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void state_pop3_list_free(struct state_pop3_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].uidl);
		free(l->v[i].base);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static char *column_text(sqlite3_stmt *s, int col)
{
	const unsigned char *t = sqlite3_column_text(s, col);
	return xstrdup(t ? (const char *)t : "");
}

int state_pop3_load(struct state *st, struct state_pop3_list *out, struct err *err)
{
	state_pop3_list_free(out);
	sqlite3_stmt *s = db_stmt(st, SQL_POP3_LOAD, err);
	if (!s)
		return -EIO;
	size_t cap = 0;
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		out->v = xgrow(out->v, &cap, out->n + 1, sizeof(*out->v));
		out->v[out->n++] = (struct state_pop3){
			.uidl = column_text(s, 0),
			.base = column_text(s, 1),
			.size = (uint64_t)sqlite3_column_int64(s, 2),
			.fetched = sqlite3_column_int64(s, 3),
			.state = (enum state_msg_state)sqlite3_column_int(s, 4),
		};
	}
	if (rc != SQLITE_DONE) {
		state_pop3_list_free(out);
		return db_fail(st, s, rc, "loading the POP3 messages", err);
	}
	db_done(s);
	return 0;
}

const struct state_pop3 *state_pop3_find(const struct state_pop3_list *l, const char *uidl)
{
	size_t lo = 0, hi = l->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(l->v[mid].uidl, uidl);
		if (c == 0)
			return &l->v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int state_pop3_add(struct state *st, const struct state_pop3 *m, struct err *err)
{
	BUG_ON(!m->uidl || !m->base);
	BUG_ON(m->state != STATE_SYNCED && m->state != STATE_DOWNLOADING);
	sqlite3_stmt *s = db_stmt(st, SQL_POP3_ADD, err);
	if (!s)
		return -EIO;
	db_bind_text(s, 1, m->uidl);
	db_bind_text(s, 2, m->base);
	sqlite3_bind_int64(s, 3, (int64_t)m->size);
	sqlite3_bind_int64(s, 4, m->fetched);
	sqlite3_bind_int(s, 5, (int)m->state);
	int rc = db_run(st, s, "recording a POP3 message", err);
	if (rc == -EEXIST)
		err_prefix(err, "unique-id %s or base name %s", m->uidl, m->base);
	return rc;
}

/* Runs the cached statement id on the row uidl. */
static int run_uidl(struct state *st, enum stmt_id id, const char *uidl, const char *what,
		    struct err *err)
{
	sqlite3_stmt *s = db_stmt(st, id, err);
	if (!s)
		return -EIO;
	db_bind_text(s, 1, uidl);
	int rc = db_run(st, s, what, err);
	if (rc == 0 && sqlite3_changes(st->db) == 0)
		rc = err_set(err, -ENOENT, ERR_LOCAL, "%s: %s: no POP3 message with unique-id %s",
			     st->path, what, uidl);
	return rc;
}

int state_pop3_settle(struct state *st, const char *uidl, struct err *err)
{
	return run_uidl(st, SQL_POP3_SETTLE, uidl, "settling a POP3 message", err);
}

int state_pop3_delete(struct state *st, const char *uidl, struct err *err)
{
	return run_uidl(st, SQL_POP3_DELETE, uidl, "forgetting a POP3 message", err);
}
