/* The connection: opening the file safely, transactions, the statement cache
 * and the translation of SQLite results into negative errno + struct err. */
#include "state/internal.h"

#include "core/log.h"
#include "core/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Long enough to wait out another process's batch, short enough to report a
 * stuck lock holder instead of hanging a sync. */
#define STATE_BUSY_MS 5000

static const char *const sql_text[SQL_COUNT_] = {
	[SQL_BEGIN] = "BEGIN IMMEDIATE",
	[SQL_COMMIT] = "COMMIT",
	[SQL_ROLLBACK] = "ROLLBACK",
	[SQL_SAVEPOINT] = "SAVEPOINT step",
	[SQL_RELEASE] = "RELEASE step",
	[SQL_ROLLBACK_TO] = "ROLLBACK TO step",
	[SQL_FOLDER_GET] = "SELECT " FOLDER_COLUMNS " FROM folder WHERE name = ?1",
	[SQL_FOLDER_ADD] = "INSERT INTO folder (name, path) VALUES (?1, ?2)",
	[SQL_FOLDER_LIST] = "SELECT " FOLDER_COLUMNS " FROM folder ORDER BY name",
	[SQL_FOLDER_SAVE] = "UPDATE folder SET highestmodseq = ?2, uidnext = ?3, new_mtime_s = ?4,"
			    " new_mtime_ns = ?5, cur_mtime_s = ?6, cur_mtime_ns = ?7,"
			    " last_sync = ?8, last_result = ?9, messages = ?10, unread = ?11"
			    " WHERE id = ?1",
	[SQL_FOLDER_UIDVALIDITY_GET] = "SELECT uidvalidity FROM folder WHERE id = ?1",
	[SQL_FOLDER_UIDVALIDITY_SET] = "UPDATE folder SET uidvalidity = ?2, highestmodseq = 0,"
				       " uidnext = 0 WHERE id = ?1",
	[SQL_FOLDER_FORGET_UIDS] = "UPDATE message SET uid = NULL, since_uid = NULL"
				   " WHERE folder = ?1",
	[SQL_FOLDER_FORGET_SOURCES] = "UPDATE message SET src_folder = NULL, src_uid = NULL"
				      " WHERE src_folder = ?1",
	[SQL_FOLDER_RENAME] = "UPDATE folder SET name = ?2, path = ?3 WHERE id = ?1",
	[SQL_FOLDER_DELETE] = "DELETE FROM folder WHERE id = ?1",
	[SQL_MSG_LOAD] = "SELECT " MSG_COLUMNS " FROM message WHERE folder = ?1 ORDER BY uid",
	[SQL_MSG_LOAD_LEAN] = "SELECT " MSG_COLUMNS_LEAN " FROM message WHERE folder = ?1"
			      " ORDER BY uid",
	/* Without INDEXED BY the planner walks message_uid for the ORDER BY:
	 * every row of the account instead of the few pending ones. */
	[SQL_MSG_PENDING] = "SELECT " MSG_COLUMNS " FROM message INDEXED BY message_pending"
			    " WHERE state <> 0 ORDER BY folder, base",
	[SQL_MSG_FIND_BASE] = "SELECT " MSG_COLUMNS " FROM message WHERE base = ?1"
			      " ORDER BY folder",
	[SQL_MSG_FIND_MSGID] = "SELECT " MSG_COLUMNS " FROM message WHERE msgid = ?1"
			       " ORDER BY folder, uid",
	[SQL_MSG_FIND_MSGID_SIZE] = "SELECT " MSG_COLUMNS " FROM message"
				    " WHERE msgid = ?1 AND size = ?2 ORDER BY folder, uid",
	[SQL_MSG_COUNT] = "SELECT count(*) FROM message WHERE folder = ?1",
	[SQL_MSG_ADD] = "INSERT INTO message (" MSG_COLUMNS ")"
			" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
	[SQL_MSG_MOVE] = "INSERT INTO message (" MSG_COLUMNS ")"
			 " SELECT ?3, ?4, msgid, hash, size, NULL, flags, ?6, ?5, folder, uid"
			 " FROM message WHERE folder = ?1 AND uid = ?2",
	[SQL_MSG_FLAGS_UID] = "UPDATE message SET flags = ?3 WHERE folder = ?1 AND uid = ?2",
	[SQL_MSG_FLAGS_BASE] = "UPDATE message SET flags = ?3 WHERE folder = ?1 AND base = ?2",
	[SQL_MSG_SETTLE_UID] = "UPDATE message SET " SETTLE_SET " WHERE folder = ?1 AND uid = ?2",
	[SQL_MSG_SETTLE_BASE] = "UPDATE message SET " SETTLE_SET " WHERE folder = ?1 AND base = ?2",
	[SQL_MSG_DELETE_UID] = "DELETE FROM message WHERE folder = ?1 AND uid = ?2",
	[SQL_MSG_DELETE_BASE] = "DELETE FROM message WHERE folder = ?1 AND base = ?2",
	[SQL_POP3_LOAD] = "SELECT uidl, base, size, fetched, state FROM pop3 ORDER BY uidl",
	[SQL_POP3_ADD] = "INSERT INTO pop3 (uidl, base, size, fetched, state)"
			 " VALUES (?1, ?2, ?3, ?4, ?5)",
	[SQL_POP3_SETTLE] = "UPDATE pop3 SET state = 0 WHERE uidl = ?1",
	[SQL_POP3_DELETE] = "DELETE FROM pop3 WHERE uidl = ?1",
};

static int errno_of(int rc, enum err_class *cls)
{
	*cls = ERR_LOCAL;
	switch (rc) {
	case SQLITE_CONSTRAINT_UNIQUE:
	case SQLITE_CONSTRAINT_PRIMARYKEY:
		return -EEXIST;
	case SQLITE_CONSTRAINT_FOREIGNKEY:
		return -ENOENT;
	}
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		*cls = ERR_TEMP;
		return -EBUSY;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -EUCLEAN;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_PERM:
	case SQLITE_READONLY:
	case SQLITE_CANTOPEN:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_CONSTRAINT:
	case SQLITE_MISMATCH:
	case SQLITE_RANGE:
		return -EINVAL;
	case SQLITE_NOMEM:
		log_error("SQLite ran out of memory");
		abort();
	}
	return -EIO;
}

int db_fail(struct state *st, sqlite3_stmt *s, int rc, const char *what, struct err *err)
{
	enum err_class cls;
	int e = errno_of(rc, &cls);
	/* The message belongs to the failed step: take it before the reset. */
	err_set(err, e, cls, "%s: %s: %s%s", st->path, what, sqlite3_errmsg(st->db),
		e == -EUCLEAN ? " (the sync state file is damaged)" : "");
	if (s) {
		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
	}
	return e;
}

sqlite3_stmt *db_stmt(struct state *st, enum stmt_id id, struct err *err)
{
	sqlite3_stmt **sp = &st->stmts[id];
	if (!*sp) {
		int rc = sqlite3_prepare_v3(st->db, sql_text[id], -1, SQLITE_PREPARE_PERSISTENT,
					    sp, NULL);
		if (rc != SQLITE_OK) {
			db_fail(st, NULL, rc, "preparing a query", err);
			*sp = NULL;
			return NULL;
		}
	}
	return *sp;
}

void db_done(sqlite3_stmt *s)
{
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
}

int db_run(struct state *st, sqlite3_stmt *s, const char *what, struct err *err)
{
	int rc = sqlite3_step(s);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return db_fail(st, s, rc, what, err);
	db_done(s);
	return 0;
}

int db_run_id(struct state *st, enum stmt_id id, const char *what, struct err *err)
{
	sqlite3_stmt *s = db_stmt(st, id, err);
	return s ? db_run(st, s, what, err) : -EIO;
}

int db_exec(struct state *st, const char *sql, const char *what, struct err *err)
{
	int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : db_fail(st, NULL, rc, what, err);
}

void db_bind_uid(sqlite3_stmt *s, int idx, uint32_t uid)
{
	if (uid)
		sqlite3_bind_int64(s, idx, uid);
	else
		sqlite3_bind_null(s, idx);
}

void db_bind_text(sqlite3_stmt *s, int idx, const char *text)
{
	if (text)
		sqlite3_bind_text(s, idx, text, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, idx);
}

void db_bind_blob(sqlite3_stmt *s, int idx, const void *p, size_t n)
{
	if (p && n)
		sqlite3_bind_blob64(s, idx, p, n, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, idx);
}

int db_savepoint(struct state *st, struct err *err)
{
	return db_run_id(st, SQL_SAVEPOINT, "starting a step", err);
}

int db_release(struct state *st, int rc, struct err *err)
{
	if (rc == 0)
		return db_run_id(st, SQL_RELEASE, "finishing a step", err);
	/* Keep the first error: it says what went wrong. */
	if (db_run_id(st, SQL_ROLLBACK_TO, "undoing a step", NULL) == 0)
		db_run_id(st, SQL_RELEASE, "undoing a step", NULL);
	return rc;
}

int state_begin(struct state *st, struct err *err)
{
	BUG_ON(!sqlite3_get_autocommit(st->db));
	return db_run_id(st, SQL_BEGIN, "starting a transaction", err);
}

int state_commit(struct state *st, struct err *err)
{
	BUG_ON(sqlite3_get_autocommit(st->db));
	return db_run_id(st, SQL_COMMIT, "committing", err);
}

int state_rollback(struct state *st, struct err *err)
{
	/* A failed COMMIT may have rolled back already. */
	if (sqlite3_get_autocommit(st->db))
		return 0;
	return db_run_id(st, SQL_ROLLBACK, "rolling back", err);
}

const char *state_path(const struct state *st)
{
	return st->path;
}

/* mkdir -p with mode 0700 for every directory it creates. */
static int make_dirs(char *path)
{
	if (mkdir(path, 0700) == 0 || errno == EEXIST)
		return 0;
	if (errno != ENOENT)
		return -errno;
	char *slash = strrchr(path, '/');
	if (!slash || slash == path)
		return -ENOENT;
	*slash = '\0';
	int rc = make_dirs(path);
	*slash = '/';
	if (rc)
		return rc;
	return mkdir(path, 0700) == 0 || errno == EEXIST ? 0 : -errno;
}

static int make_state_dir(const char *dir, struct err *err)
{
	char *copy = xstrdup(dir);
	int rc = make_dirs(copy);
	xfree(&copy);
	struct stat sb;
	if (rc == 0 && stat(dir, &sb) < 0)
		rc = -errno;
	if (rc == 0 && !S_ISDIR(sb.st_mode))
		rc = -ENOTDIR;
	if (rc)
		return err_set(err, rc, ERR_LOCAL, "%s: cannot create the state directory: %s", dir,
			       strerror(-rc));
	return 0;
}

/* SQLite would create the file with 0644 & ~umask, and its -wal and -shm
 * files copy the database's mode: create it private first. */
static int make_private_file(const char *path, struct err *err)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_set(err, -errno, ERR_LOCAL, "%s: cannot open: %s", path,
			       strerror(errno));
	struct stat sb;
	int rc = 0;
	if (fstat(fd, &sb) < 0)
		rc = -errno;
	else if (!S_ISREG(sb.st_mode))
		rc = -EINVAL;
	else if ((sb.st_mode & 077) && fchmod(fd, 0600) < 0)
		rc = -errno;
	close(fd);
	if (rc)
		return err_set(err, rc, ERR_LOCAL, "%s: cannot make it a private file: %s", path,
			       strerror(-rc));
	return 0;
}

static bool valid_account(const char *a)
{
	return a && *a && !strchr(a, '/') && strcmp(a, ".") != 0 && strcmp(a, "..") != 0;
}

static int connect_db(struct state *st, struct err *err)
{
	int rc = sqlite3_open_v2(st->path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
				 NULL);
	if (rc != SQLITE_OK) {
		if (!st->db)
			return err_set(err, -ENOMEM, ERR_LOCAL, "%s: cannot open", st->path);
		return db_fail(st, NULL, rc, "cannot open", err);
	}
	sqlite3_extended_result_codes(st->db, 1);
	sqlite3_busy_timeout(st->db, STATE_BUSY_MS);
	return schema_prepare(st, err);
}

int state_open(const char *state_dir, const char *account, struct state **out, struct err *err)
{
	*out = NULL;
	if (!valid_account(account))
		return err_set(err, -EINVAL, ERR_CONFIG,
			       "account name \"%s\" cannot name a state file", account);
	int rc = make_state_dir(state_dir, err);
	if (rc)
		return rc;
	struct state *st = xcalloc(1, sizeof(*st));
	st->path = xasprintf("%s/%s.db", state_dir, account);
	rc = make_private_file(st->path, err);
	if (rc == 0)
		rc = connect_db(st, err);
	if (rc) {
		state_close(&st);
		return rc;
	}
	*out = st;
	return 0;
}

void state_close(struct state **stp)
{
	struct state *st = *stp;
	if (!st)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(st->stmts); i++)
		sqlite3_finalize(st->stmts[i]);
	/* Closing rolls back an open transaction and checkpoints the WAL. */
	if (st->db && sqlite3_close(st->db) != SQLITE_OK)
		log_warn("%s: closing: %s", st->path, sqlite3_errmsg(st->db));
	xfree(&st->path);
	free(st);
	*stp = NULL;
}
