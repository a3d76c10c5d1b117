/* The POP3 rows of the state store and the schema migration that brought
 * them (version 1 -> 2): a file written by a version-1 mailferry keeps its
 * folders and messages and gains the pop3 table. */
#include "check.h"

#include "state/state.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

static char dir[] = "/tmp/mf-test-state-pop3-XXXXXX";

static void remove_db(const char *account)
{
	const char *suffixes[] = { "", "-wal", "-shm" };
	for (size_t i = 0; i < 3; i++) {
		char path[256];
		snprintf(path, sizeof(path), "%s/%s.db%s", dir, account, suffixes[i]);
		unlink(path);
	}
}

static long long query(const char *account, const char *sql)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s.db", dir, account);
	sqlite3 *db;
	long long v = -1;
	CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_stmt *s;
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK) {
		if (sqlite3_step(s) == SQLITE_ROW)
			v = sqlite3_column_int64(s, 0);
		sqlite3_finalize(s);
	}
	sqlite3_close(db);
	return v;
}

/* What mailferry 0.1 (schema version 1) wrote, verbatim. */
static const char v1_schema[] =
	"PRAGMA application_id = 1296454484;"
	"CREATE TABLE folder (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
	" path TEXT NOT NULL UNIQUE, uidvalidity INTEGER NOT NULL DEFAULT 0,"
	" highestmodseq INTEGER NOT NULL DEFAULT 0, uidnext INTEGER NOT NULL DEFAULT 0,"
	" new_mtime_s INTEGER NOT NULL DEFAULT 0, new_mtime_ns INTEGER NOT NULL DEFAULT 0,"
	" cur_mtime_s INTEGER NOT NULL DEFAULT 0, cur_mtime_ns INTEGER NOT NULL DEFAULT 0,"
	" last_sync INTEGER NOT NULL DEFAULT 0, last_result TEXT NOT NULL DEFAULT '',"
	" messages INTEGER NOT NULL DEFAULT 0, unread INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE message (folder INTEGER NOT NULL REFERENCES folder (id) ON DELETE CASCADE,"
	" base TEXT NOT NULL, msgid TEXT, hash BLOB, size INTEGER NOT NULL, uid INTEGER,"
	" flags INTEGER NOT NULL, state INTEGER NOT NULL DEFAULT 0 CHECK (state BETWEEN 0 AND 3),"
	" since_uid INTEGER, src_folder INTEGER REFERENCES folder (id) ON DELETE SET NULL,"
	" src_uid INTEGER);"
	"CREATE UNIQUE INDEX message_uid ON message (folder, uid);"
	"CREATE UNIQUE INDEX message_base ON message (base, folder);"
	"CREATE INDEX message_msgid ON message (msgid, size) WHERE msgid IS NOT NULL;"
	"CREATE INDEX message_pending ON message (state) WHERE state <> 0;"
	"INSERT INTO folder (id, name, path, uidvalidity, last_sync) VALUES (1, 'INBOX', 'INBOX',"
	" 77, 1700000000);"
	"INSERT INTO message (folder, base, msgid, size, uid, flags) VALUES"
	" (1, '1700000000.M1P1.host', '<a@b>', 120, 5, 16);"
	"PRAGMA user_version = 1;";

static void test_migration_from_v1(void)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/old.db", dir);
	sqlite3 *db;
	CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
	CHECK_INT(sqlite3_exec(db, v1_schema, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	CHECK_INT(query("old", "PRAGMA user_version"), 1);

	struct state *st;
	struct err err;
	CHECK_INT(state_open(dir, "old", &st, &err), 0);
	CHECK_INT(query("old", "PRAGMA user_version"), STATE_SCHEMA_VERSION);
	CHECK_INT(STATE_SCHEMA_VERSION, 2);
	/* The old rows are all there. */
	struct state_folder f = { 0 };
	CHECK_INT(state_folder_get(st, "INBOX", "INBOX", &f, &err), 0);
	CHECK_INT(f.id, 1);
	CHECK_INT(f.uidvalidity, 77);
	CHECK_INT(f.last_sync, 1700000000);
	struct state_msgs msgs = { 0 };
	CHECK_INT(state_msg_load(st, f.id, &msgs, &err), 0);
	CHECK_INT(msgs.n, 1);
	CHECK_STR(msgs.v[0].base, "1700000000.M1P1.host");
	CHECK_STR(msgs.v[0].msgid, "<a@b>");
	CHECK_INT(msgs.v[0].uid, 5);
	state_msgs_free(&msgs);
	state_folder_clear(&f);
	/* The new table works. */
	struct state_pop3 m = { .uidl = "u1", .base = "b1", .size = 10, .fetched = 5 };
	CHECK_INT(state_pop3_add(st, &m, &err), 0);
	state_close(&st);
	/* Opening again migrates nothing more. */
	CHECK_INT(state_open(dir, "old", &st, &err), 0);
	struct state_pop3_list l = { 0 };
	CHECK_INT(state_pop3_load(st, &l, &err), 0);
	CHECK_INT(l.n, 1);
	state_pop3_list_free(&l);
	state_close(&st);
	CHECK_INT(query("old", "SELECT count(*) FROM message"), 1);
	remove_db("old");
}

static void test_newer_refused(void)
{
	struct state *st;
	struct err err;
	CHECK_INT(state_open(dir, "newer", &st, &err), 0);
	state_close(&st);
	char path[256];
	snprintf(path, sizeof(path), "%s/newer.db", dir);
	sqlite3 *db;
	CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
	CHECK_INT(sqlite3_exec(db, "PRAGMA user_version = 3", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	CHECK_INT(state_open(dir, "newer", &st, &err), -EPROTONOSUPPORT);
	CHECK(strstr(err.msg, "schema version 3") != NULL);
	remove_db("newer");
}

static void test_rows(void)
{
	struct state *st;
	struct err err;
	CHECK_INT(state_open(dir, "rows", &st, &err), 0);
	const char *ids[] = { "zz9", "0001", "Abc", "abc" };
	CHECK_INT(state_begin(st, &err), 0);
	for (size_t i = 0; i < 4; i++) {
		char base[32];
		snprintf(base, sizeof(base), "base%zu", i);
		struct state_pop3 m = { .uidl = (char *)ids[i], .base = base, .size = 100 + i,
					.fetched = 1000 + (int64_t)i, .state = STATE_DOWNLOADING };
		CHECK_INT(state_pop3_add(st, &m, &err), 0);
	}
	CHECK_INT(state_commit(st, &err), 0);
	struct state_pop3 dup = { .uidl = "Abc", .base = "other", .size = 1, .fetched = 1 };
	CHECK_INT(state_pop3_add(st, &dup, &err), -EEXIST);
	CHECK(strstr(err.msg, "unique-id Abc") != NULL);
	dup = (struct state_pop3){ .uidl = "new", .base = "base0", .size = 1, .fetched = 1 };
	CHECK_INT(state_pop3_add(st, &dup, &err), -EEXIST);
	CHECK_INT(state_pop3_settle(st, "abc", &err), 0);
	CHECK_INT(state_pop3_settle(st, "nope", &err), -ENOENT);
	CHECK_INT(state_pop3_delete(st, "zz9", &err), 0);
	CHECK_INT(state_pop3_delete(st, "zz9", &err), -ENOENT);
	state_close(&st);

	CHECK_INT(state_open(dir, "rows", &st, &err), 0);
	struct state_pop3_list l = { 0 };
	CHECK_INT(state_pop3_load(st, &l, &err), 0);
	CHECK_INT(l.n, 3);
	/* Sorted bytewise, so the binary search finds each. */
	CHECK_STR(l.v[0].uidl, "0001");
	CHECK_STR(l.v[1].uidl, "Abc");
	CHECK_STR(l.v[2].uidl, "abc");
	const struct state_pop3 *r = state_pop3_find(&l, "abc");
	CHECK(r && r->state == STATE_SYNCED && strcmp(r->base, "base3") == 0);
	CHECK_INT(r ? r->size : 0, 103);
	CHECK_INT(r ? r->fetched : 0, 1003);
	r = state_pop3_find(&l, "Abc");
	CHECK(r && r->state == STATE_DOWNLOADING);
	CHECK(state_pop3_find(&l, "zz9") == NULL);
	CHECK(state_pop3_find(&l, "") == NULL);
	/* Loading again replaces the list. */
	CHECK_INT(state_pop3_load(st, &l, &err), 0);
	CHECK_INT(l.n, 3);
	state_pop3_list_free(&l);
	CHECK_INT(l.n, 0);
	state_close(&st);
	remove_db("rows");
}

int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_migration_from_v1);
	RUN(test_newer_refused);
	RUN(test_rows);
	rmdir(dir);
	CHECK_DONE();
}
