/* Shared by the files of state/: the connection, its cache of prepared
 * statements and the helpers that turn SQLite results into struct err.
 * Internal to state/. */
#ifndef MF_STATE_INTERNAL_H
#define MF_STATE_INTERNAL_H

#include "core/err.h"
#include "state/state.h"

#include <sqlite3.h>
#include <stdbool.h>

/* Every statement the store runs more than once, prepared on first use and
 * kept for the connection's life. The SQL texts sit in db.c. */
enum stmt_id {
	SQL_BEGIN,
	SQL_COMMIT,
	SQL_ROLLBACK,
	SQL_SAVEPOINT,
	SQL_RELEASE,
	SQL_ROLLBACK_TO,
	SQL_FOLDER_GET,
	SQL_FOLDER_ADD,
	SQL_FOLDER_LIST,
	SQL_FOLDER_SAVE,
	SQL_FOLDER_UIDVALIDITY_GET,
	SQL_FOLDER_UIDVALIDITY_SET,
	SQL_FOLDER_FORGET_UIDS,
	SQL_FOLDER_FORGET_SOURCES,
	SQL_FOLDER_RENAME,
	SQL_FOLDER_DELETE,
	SQL_MSG_LOAD,
	SQL_MSG_LOAD_LEAN,
	SQL_MSG_PENDING,
	SQL_MSG_FIND_BASE,
	SQL_MSG_FIND_MSGID,
	SQL_MSG_FIND_MSGID_SIZE,
	SQL_MSG_COUNT,
	SQL_MSG_ADD,
	SQL_MSG_MOVE,
	SQL_MSG_FLAGS_UID,
	SQL_MSG_FLAGS_BASE,
	SQL_MSG_SETTLE_UID,
	SQL_MSG_SETTLE_BASE,
	SQL_MSG_DELETE_UID,
	SQL_MSG_DELETE_BASE,
	SQL_POP3_LOAD,
	SQL_POP3_ADD,
	SQL_POP3_SETTLE,
	SQL_POP3_DELETE,
	SQL_COUNT_
};

struct state {
	sqlite3 *db;
	char *path;
	sqlite3_stmt *stmts[SQL_COUNT_];
};

/* The columns every folder reader selects, in the order folder.c reads them. */
#define FOLDER_COLUMNS                                                                             \
	"id, name, path, uidvalidity, highestmodseq, uidnext, new_mtime_s, new_mtime_ns,"         \
	" cur_mtime_s, cur_mtime_ns, last_sync, last_result, messages, unread"
/* The columns every message reader selects (and SQL_MSG_ADD writes), in the
 * order msgs.c reads them and msg.c binds them. */
#define MSG_COLUMNS                                                                                \
	"folder, base, msgid, hash, size, uid, flags, state, since_uid, src_folder, src_uid"
/* MSG_COLUMNS with msgid and hash NULL in the rows that have a UID. */
#define MSG_COLUMNS_LEAN                                                                           \
	"folder, base, CASE WHEN ifnull(uid, 0) = 0 THEN msgid END,"                               \
	" CASE WHEN ifnull(uid, 0) = 0 THEN hash END, size, uid, flags, state, since_uid,"         \
	" src_folder, src_uid"
/* What settling a row writes: SQL_MSG_SETTLE_* bind the UID as ?3. */
#define SETTLE_SET "uid = ?3, state = 0, since_uid = NULL, src_folder = NULL, src_uid = NULL"

/* The prepared statement for id, reset and unbound; NULL with err set when it
 * cannot be prepared. */
sqlite3_stmt *db_stmt(struct state *st, enum stmt_id id, struct err *err);
/* Resets s and clears its bindings, ready for the next use. */
void db_done(sqlite3_stmt *s);
/* Steps s to its end (a statement that returns no rows), then resets it. */
int db_run(struct state *st, sqlite3_stmt *s, const char *what, struct err *err);
/* db_run on a cached statement that takes no parameters. */
int db_run_id(struct state *st, enum stmt_id id, const char *what, struct err *err);
/* Makes the following writes one atomic step, inside or outside a
 * transaction: db_release(st, rc, err) keeps them when rc is 0, undoes them
 * otherwise, and returns rc (or the error releasing). */
int db_savepoint(struct state *st, struct err *err);
int db_release(struct state *st, int rc, struct err *err);
/* Runs SQL text with no parameters (pragmas, transaction control, schema). */
int db_exec(struct state *st, const char *sql, const char *what, struct err *err);
/* Resets s and fills err from the SQLite result rc: "PATH: what: reason". */
int db_fail(struct state *st, sqlite3_stmt *s, int rc, const char *what, struct err *err);

/* Binding helpers: uid 0 and empty optional values are stored as NULL. */
void db_bind_uid(sqlite3_stmt *s, int idx, uint32_t uid);
void db_bind_text(sqlite3_stmt *s, int idx, const char *text);
void db_bind_blob(sqlite3_stmt *s, int idx, const void *p, size_t n);

/* Brings the schema to STATE_SCHEMA_VERSION, or explains why it cannot. */
int schema_prepare(struct state *st, struct err *err);

#endif
