/* Writing message rows: add, move intent, flags, settle, delete. */
#include "state/internal.h"

#include "core/xalloc.h"

#include <errno.h>

/* Binds m as the values of SQL_MSG_ADD, in MSG_COLUMNS order. */
static void bind_msg(sqlite3_stmt *s, const struct state_msg *m)
{
	sqlite3_bind_int64(s, 1, m->folder);
	db_bind_text(s, 2, m->base);
	db_bind_text(s, 3, m->msgid);
	db_bind_blob(s, 4, m->hash, m->hash_len);
	sqlite3_bind_int64(s, 5, (int64_t)m->size);
	db_bind_uid(s, 6, m->uid);
	sqlite3_bind_int64(s, 7, m->flags);
	sqlite3_bind_int(s, 8, (int)m->state);
	db_bind_uid(s, 9, m->since_uid);
	/* Only state_msg_move makes moving rows, from the original's row. */
	sqlite3_bind_null(s, 10);
	sqlite3_bind_null(s, 11);
}

int state_msg_add(struct state *st, const struct state_msg *m, struct err *err)
{
	BUG_ON(!m->base);
	BUG_ON(m->state == STATE_MOVING);
	/* Only an upload lacks its UID; re-matched rows get theirs by settling. */
	BUG_ON((m->uid == 0) != (m->state == STATE_UPLOADING));
	sqlite3_stmt *s = db_stmt(st, SQL_MSG_ADD, err);
	if (!s)
		return -EIO;
	bind_msg(s, m);
	int rc = db_run(st, s, "adding a message", err);
	if (rc == -EEXIST)
		err_prefix(err, "folder %lld: UID %u or base name %s", (long long)m->folder,
			   m->uid, m->base);
	else if (rc == -ENOENT)
		err_prefix(err, "folder %lld", (long long)m->folder);
	return rc;
}

/* Runs s (bound, with the folder as ?1 and the key as ?2) on one row. */
static int run_keyed(struct state *st, sqlite3_stmt *s, int64_t folder, struct state_key k,
		     const char *what, struct err *err)
{
	int rc = db_run(st, s, what, err);
	if (rc || sqlite3_changes(st->db))
		return rc;
	if (k.uid)
		return err_set(err, -ENOENT, ERR_LOCAL, "%s: %s: folder %lld has no UID %u",
			       st->path, what, (long long)folder, k.uid);
	return err_set(err, -ENOENT, ERR_LOCAL, "%s: %s: folder %lld has no base name %s",
		       st->path, what, (long long)folder, k.base);
}

/* The statement for k (by_uid or by_base) with folder and key bound. */
static sqlite3_stmt *keyed(struct state *st, int64_t folder, struct state_key k,
			   enum stmt_id by_uid, enum stmt_id by_base, struct err *err)
{
	BUG_ON(!k.uid && !k.base);
	sqlite3_stmt *s = db_stmt(st, k.uid ? by_uid : by_base, err);
	if (!s)
		return NULL;
	sqlite3_bind_int64(s, 1, folder);
	if (k.uid)
		sqlite3_bind_int64(s, 2, k.uid);
	else
		db_bind_text(s, 2, k.base);
	return s;
}

/* Copies the original's row into the destination as a moving row, then
 * deletes it; the caller holds a savepoint. */
static int move_row(struct state *st, int64_t src_folder, uint32_t src_uid, int64_t dst_folder,
		    const char *base, uint32_t since_uid, struct err *err)
{
	const char *what = "recording a move";
	sqlite3_stmt *s = db_stmt(st, SQL_MSG_MOVE, err);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, src_folder);
	sqlite3_bind_int64(s, 2, src_uid);
	sqlite3_bind_int64(s, 3, dst_folder);
	db_bind_text(s, 4, base);
	db_bind_uid(s, 5, since_uid);
	sqlite3_bind_int(s, 6, STATE_MOVING);
	int rc = run_keyed(st, s, src_folder, STATE_UID(src_uid), what, err);
	if (rc == -EEXIST)
		err_prefix(err, "folder %lld: base name %s", (long long)dst_folder, base);
	if (rc)
		return rc;
	s = keyed(st, src_folder, STATE_UID(src_uid), SQL_MSG_DELETE_UID, SQL_MSG_DELETE_BASE, err);
	return s ? db_run(st, s, what, err) : -EIO;
}

int state_msg_move(struct state *st, int64_t src_folder, uint32_t src_uid, int64_t dst_folder,
		   const char *base, uint32_t since_uid, struct err *err)
{
	BUG_ON(!src_uid || !base);
	int rc = db_savepoint(st, err);
	if (rc)
		return rc;
	rc = move_row(st, src_folder, src_uid, dst_folder, base, since_uid, err);
	return db_release(st, rc, err);
}

int state_msg_set_flags(struct state *st, int64_t folder, struct state_key k, uint32_t flags,
			struct err *err)
{
	sqlite3_stmt *s = keyed(st, folder, k, SQL_MSG_FLAGS_UID, SQL_MSG_FLAGS_BASE, err);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 3, flags);
	return run_keyed(st, s, folder, k, "updating flags", err);
}

int state_msg_settle(struct state *st, int64_t folder, struct state_key k, uint32_t uid,
		     struct err *err)
{
	BUG_ON(!uid);
	sqlite3_stmt *s = keyed(st, folder, k, SQL_MSG_SETTLE_UID, SQL_MSG_SETTLE_BASE, err);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 3, uid);
	int rc = run_keyed(st, s, folder, k, "settling a message", err);
	if (rc == -EEXIST)
		err_prefix(err, "folder %lld: UID %u", (long long)folder, uid);
	return rc;
}

int state_msg_delete(struct state *st, int64_t folder, struct state_key k, struct err *err)
{
	sqlite3_stmt *s = keyed(st, folder, k, SQL_MSG_DELETE_UID, SQL_MSG_DELETE_BASE, err);
	if (!s)
		return -EIO;
	return run_keyed(st, s, folder, k, "deleting a message", err);
}
