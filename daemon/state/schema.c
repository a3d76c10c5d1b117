/* The schema, its version (PRAGMA user_version) and the way from every older
 * version to the current one. The file's identity is PRAGMA application_id,
 * so a stray SQLite file of another program is refused, never changed.
 *
 * To change the schema: append a step to `migrations` (it runs in the same
 * transaction that sets the new user_version), raise STATE_SCHEMA_VERSION in
 * state.h, and describe the change in docs/STATE.md. Never edit a step that
 * has shipped. */
#include "state/internal.h"

#include "core/xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* 0x4d465354, "MFST": a mailferry state file. Decimal, for the PRAGMA. */
#define STATE_APP_ID 1296454484
#define STR_(x) #x
#define STR(x) STR_(x)

/* migrations[i] takes a database from version i to i + 1; version 0 is an
 * empty file. Column meanings: docs/STATE.md. */
static const char *const migrations[] = {
	"PRAGMA application_id = " STR(STATE_APP_ID) ";"
	"CREATE TABLE folder ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"		/* server name, UTF-8 */
	"  path TEXT NOT NULL UNIQUE,"		/* relative to the account's Maildir root */
	"  uidvalidity INTEGER NOT NULL DEFAULT 0," /* 0: not known yet */
	"  highestmodseq INTEGER NOT NULL DEFAULT 0," /* 0: unknown or NOMODSEQ */
	"  uidnext INTEGER NOT NULL DEFAULT 0,"	/* UIDNEXT seen; 0: unknown */
	"  new_mtime_s INTEGER NOT NULL DEFAULT 0," /* new/ at the last complete scan */
	"  new_mtime_ns INTEGER NOT NULL DEFAULT 0,"
	"  cur_mtime_s INTEGER NOT NULL DEFAULT 0," /* cur/ at the last complete scan */
	"  cur_mtime_ns INTEGER NOT NULL DEFAULT 0,"
	"  last_sync INTEGER NOT NULL DEFAULT 0," /* last successful sync, Unix s; 0: never */
	"  last_result TEXT NOT NULL DEFAULT '',"  /* one line about the last attempt */
	"  messages INTEGER NOT NULL DEFAULT 0,"   /* counts at the last sync */
	"  unread INTEGER NOT NULL DEFAULT 0"
	");"
	"CREATE TABLE message ("
	"  folder INTEGER NOT NULL REFERENCES folder (id) ON DELETE CASCADE,"
	"  base TEXT NOT NULL," /* Maildir base name: the file name before ':2,' */
	"  msgid TEXT,"		/* Message-ID; NULL: none */
	"  hash BLOB,"		/* body hash; NULL: none */
	"  size INTEGER NOT NULL," /* RFC822.SIZE */
	"  uid INTEGER,"	   /* NULL: not known (uploading, moving, re-matching) */
	"  flags INTEGER NOT NULL," /* at the last sync: D=1 F=2 P=4 R=8 S=16 T=32 */
	"  state INTEGER NOT NULL DEFAULT 0 CHECK (state BETWEEN 0 AND 3),"
	"  since_uid INTEGER," /* uploading, moving: the copy's UID is at least this */
	"  src_folder INTEGER REFERENCES folder (id) ON DELETE SET NULL," /* moving */
	"  src_uid INTEGER" /* moving: the original's UID in src_folder */
	");"
	"CREATE UNIQUE INDEX message_uid ON message (folder, uid);"
	"CREATE UNIQUE INDEX message_base ON message (base, folder);"
	"CREATE INDEX message_msgid ON message (msgid, size) WHERE msgid IS NOT NULL;"
	"CREATE INDEX message_pending ON message (state) WHERE state <> 0;",
	/* 2: POP3 accounts remember what they fetched. */
	"CREATE TABLE pop3 ("
	"  uidl TEXT PRIMARY KEY," /* the server's unique-id, or sha256:HEX */
	"  base TEXT NOT NULL UNIQUE," /* Maildir base name in INBOX */
	"  size INTEGER NOT NULL," /* octets as LIST counts them */
	"  fetched INTEGER NOT NULL," /* Unix seconds */
	"  state INTEGER NOT NULL DEFAULT 0 CHECK (state IN (0, 1))" /* 1: downloading */
	") WITHOUT ROWID;",
};
_Static_assert(ARRAY_SIZE(migrations) == STATE_SCHEMA_VERSION, "one step per version");

static int query_int(struct state *st, const char *sql, int64_t *out, struct err *err)
{
	sqlite3_stmt *s;
	int rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
	if (rc != SQLITE_OK)
		return db_fail(st, NULL, rc, "reading the schema", err);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int64(s, 0);
		rc = SQLITE_OK;
	}
	int ret = rc == SQLITE_OK ? 0 : db_fail(st, NULL, rc, "reading the schema", err);
	sqlite3_finalize(s);
	return ret;
}

static int check_version(struct state *st, int64_t version, struct err *err)
{
	if (version <= STATE_SCHEMA_VERSION)
		return 0;
	return err_set(err, -EPROTONOSUPPORT, ERR_LOCAL,
		       "%s: written by a newer mailferry (schema version %lld; this one knows up to "
		       "%d): refusing to touch it",
		       st->path, (long long)version, STATE_SCHEMA_VERSION);
}

/* Reads the schema version; refuses files that are not ours or too new. */
static int check_identity(struct state *st, int64_t *version, struct err *err)
{
	int64_t app = 0, objects = 0;
	int rc = query_int(st, "PRAGMA application_id", &app, err);
	if (rc == 0)
		rc = query_int(st, "PRAGMA user_version", version, err);
	if (rc == 0)
		rc = query_int(st, "SELECT count(*) FROM sqlite_schema", &objects, err);
	if (rc)
		return rc;
	bool fresh = app == 0 && *version == 0 && objects == 0;
	if (!fresh && app != STATE_APP_ID)
		return err_set(err, -EUCLEAN, ERR_LOCAL,
			       "%s: not a mailferry state database (application_id %#llx)",
			       st->path, (unsigned long long)app);
	return check_version(st, *version, err);
}

static int set_pragmas(struct state *st, struct err *err)
{
	sqlite3_stmt *s;
	int rc = sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return db_fail(st, NULL, rc, "switching to WAL", err);
	rc = sqlite3_step(s);
	const char *mode = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(s, 0) : NULL;
	bool wal = mode && strcmp(mode, "wal") == 0;
	int ret = 0;
	if (rc != SQLITE_ROW)
		ret = db_fail(st, NULL, rc, "switching to WAL", err);
	else if (!wal)
		ret = err_set(err, -ENOTSUP, ERR_LOCAL,
			      "%s: the file system does not support SQLite's WAL mode", st->path);
	sqlite3_finalize(s);
	if (ret)
		return ret;
	/* synchronous=FULL: a commit is on disk when it returns, WAL included.
	 * journal_size_limit trims the WAL a first sync of a large folder grew. */
	return db_exec(st,
		       "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;"
		       " PRAGMA journal_size_limit = 4194304;",
		       "setting up the connection", err);
}

static int migrate(struct state *st, struct err *err)
{
	/* IMMEDIATE: another process opening the same file at the same moment
	 * waits here, then finds the work done. */
	int rc = db_exec(st, "BEGIN IMMEDIATE", "creating the schema", err);
	if (rc)
		return rc;
	int64_t version = 0, from;
	rc = query_int(st, "PRAGMA user_version", &version, err);
	if (rc == 0)
		rc = check_version(st, version, err);
	for (from = version; rc == 0 && version < STATE_SCHEMA_VERSION; version++) {
		char what[64];
		snprintf(what, sizeof(what), "migrating the schema to version %lld",
			 (long long)version + 1);
		rc = db_exec(st, migrations[version], what, err);
	}
	if (rc == 0 && from < STATE_SCHEMA_VERSION) {
		char sql[64];
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", STATE_SCHEMA_VERSION);
		rc = db_exec(st, sql, "setting the schema version", err);
	}
	if (rc == 0)
		rc = db_exec(st, "COMMIT", "committing the schema", err);
	if (rc)
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

int schema_prepare(struct state *st, struct err *err)
{
	int64_t version = 0;
	int rc = check_identity(st, &version, err);
	if (rc == 0)
		rc = set_pragmas(st, err);
	if (rc == 0 && version < STATE_SCHEMA_VERSION)
		rc = migrate(st, err);
	return rc;
}
