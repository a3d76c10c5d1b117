/* The sync state store: schema, modes, every field, sorted loads, a large
 * folder, transactions, kill -9 before and after commit, damaged and newer
 * files. Each test works in its own temporary directory. */
#include "check.h"
#include "core/err.h"
#include "core/xalloc.h"
#include "state/state.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char *tmp_root;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(path);
}

/* A fresh directory under the test's temporary root. */
static char *new_dir(const char *name)
{
	char *d = xasprintf("%s/%s", tmp_root, name);
	CHECK(mkdir(d, 0700) == 0);
	return d;
}

static struct state *open_ok(const char *dir)
{
	struct err e = { 0 };
	struct state *st = NULL;
	int rc = state_open(dir, "acct", &st, &e);
	if (rc)
		fprintf(stderr, "state_open: %d %s\n", rc, e.msg);
	CHECK_INT(rc, 0);
	return st;
}

static double ms_of(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double now_ms(void)
{
	return ms_of(CLOCK_MONOTONIC);
}

/* CPU time too: on a busy machine it says more than the clock. */
static double cpu_ms(void)
{
	return ms_of(CLOCK_PROCESS_CPUTIME_ID);
}

/* Runs SQL on the file behind the store's back; returns the first column of
 * the first row as an integer (or -1). */
static long long raw_sql(const char *path, const char *sql)
{
	sqlite3 *db;
	CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_stmt *s;
	long long v = -1;
	CHECK_INT(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

static int64_t add_folder(struct state *st, const char *name, const char *path)
{
	struct state_folder f;
	struct err e = { 0 };
	CHECK_INT(state_folder_get(st, name, path, &f, &e), 0);
	int64_t id = f.id;
	state_folder_clear(&f);
	return id;
}

static struct state_msg msg(int64_t folder, uint32_t uid, const char *base)
{
	return (struct state_msg){ .folder = folder, .uid = uid, .base = base, .size = 1000 + uid };
}

static void test_create_and_modes(void)
{
	char *root = new_dir("modes");
	char *dir = xasprintf("%s/a/b", root);
	struct state *st = open_ok(dir);
	char *want = xasprintf("%s/acct.db", dir);
	CHECK_STR(state_path(st), want);
	free(want);
	struct stat sb;
	char *a = xasprintf("%s/a", root);
	CHECK(stat(a, &sb) == 0 && (sb.st_mode & 0777) == 0700);
	CHECK(stat(dir, &sb) == 0 && (sb.st_mode & 0777) == 0700);
	CHECK(stat(state_path(st), &sb) == 0 && (sb.st_mode & 0777) == 0600);
	add_folder(st, "INBOX", "INBOX");
	char *wal = xasprintf("%s-wal", state_path(st));
	char *shm = xasprintf("%s-shm", state_path(st));
	CHECK(stat(wal, &sb) == 0 && (sb.st_mode & 0777) == 0600);
	CHECK(stat(shm, &sb) == 0 && (sb.st_mode & 0777) == 0600);
	char *path = xstrdup(state_path(st));
	state_close(&st);
	CHECK(st == NULL);
	state_close(&st);

	CHECK_INT(raw_sql(path, "PRAGMA user_version"), STATE_SCHEMA_VERSION);
	CHECK_INT(raw_sql(path, "SELECT count(*) FROM folder"), 1);
	/* A file others could read is made private again. */
	CHECK(chmod(path, 0644) == 0);
	st = open_ok(dir);
	CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
	struct state_folder *v;
	size_t n;
	struct err e = { 0 };
	CHECK_INT(state_folder_list(st, &v, &n, &e), 0);
	CHECK_INT(n, 1);
	CHECK_STR(v[0].name, "INBOX");
	state_folder_list_free(&v, n);
	state_close(&st);
	free(wal), free(shm), free(path), free(a), free(dir), free(root);
}

static void test_bad_places(void)
{
	char *root = new_dir("bad");
	struct state *st = NULL;
	struct err e = { 0 };
	CHECK_INT(state_open(root, "../x", &st, &e), -EINVAL);
	CHECK_INT(state_open(root, "", &st, &e), -EINVAL);
	CHECK_INT(state_open(root, "..", &st, &e), -EINVAL);
	char *file = xasprintf("%s/file", root);
	int fd = open(file, O_CREAT | O_WRONLY, 0600);
	CHECK(fd >= 0);
	close(fd);
	CHECK_INT(state_open(file, "acct", &st, &e), -ENOTDIR);
	CHECK(strstr(e.msg, file) != NULL);
	CHECK(st == NULL);
	free(file), free(root);
}

static void test_folder_fields(void)
{
	char *dir = new_dir("folders");
	struct state *st = open_ok(dir);
	struct err e = { 0 };
	struct state_folder f;
	CHECK_INT(state_folder_get(st, "Büro/Rechnungen", "Büro.Rechnungen", &f, &e), 0);
	CHECK(f.id > 0);
	CHECK_STR(f.last_result, "");
	/* First: a new UIDVALIDITY resets HIGHESTMODSEQ and UIDNEXT. */
	CHECK_INT(state_folder_set_uidvalidity(st, f.id, 3000000000u, &e), 0);
	f.highestmodseq = (1ULL << 62) + 5;
	f.uidnext = 4000000000u;
	f.new_mtime = (struct timespec){ 1700000000, 123456789 };
	f.cur_mtime = (struct timespec){ 1700000001, 999999999 };
	f.last_sync = 1700000002;
	free(f.last_result);
	f.last_result = xstrdup("ok down=3 up=1");
	f.messages = 1234;
	f.unread = 56;
	CHECK_INT(state_folder_save(st, &f, &e), 0);
	int64_t id = f.id;
	state_folder_clear(&f);
	add_folder(st, "Archive", "Archive");
	state_close(&st);

	st = open_ok(dir);
	/* get does not create twice and ignores a different path. */
	CHECK_INT(state_folder_get(st, "Büro/Rechnungen", "elsewhere", &f, &e), 0);
	CHECK_INT(f.id, id);
	CHECK_STR(f.path, "Büro.Rechnungen");
	CHECK_INT(f.uidvalidity, 3000000000u);
	CHECK(f.highestmodseq == (1ULL << 62) + 5);
	CHECK_INT(f.uidnext, 4000000000u);
	CHECK_INT(f.new_mtime.tv_sec, 1700000000);
	CHECK_INT(f.new_mtime.tv_nsec, 123456789);
	CHECK_INT(f.cur_mtime.tv_sec, 1700000001);
	CHECK_INT(f.cur_mtime.tv_nsec, 999999999);
	CHECK_INT(f.last_sync, 1700000002);
	CHECK_STR(f.last_result, "ok down=3 up=1");
	CHECK_INT(f.messages, 1234);
	CHECK_INT(f.unread, 56);
	state_folder_clear(&f);

	struct state_folder *v;
	size_t n;
	CHECK_INT(state_folder_list(st, &v, &n, &e), 0);
	CHECK_INT(n, 2);
	CHECK_STR(v[0].name, "Archive");
	CHECK_STR(v[1].name, "Büro/Rechnungen");
	state_folder_list_free(&v, n);
	CHECK(v == NULL);

	/* Names and paths are unique; a rename keeps the id. */
	CHECK_INT(state_folder_get(st, "Other", "Archive", &f, &e), -EEXIST);
	CHECK(strstr(e.msg, state_path(st)) != NULL);
	CHECK_INT(state_folder_rename(st, id, "Archive", "X", &e), -EEXIST);
	CHECK_INT(state_folder_rename(st, id, "Office/Bills", "Office.Bills", &e), 0);
	CHECK_INT(state_folder_get(st, "Office/Bills", "?", &f, &e), 0);
	CHECK_INT(f.id, id);
	CHECK_STR(f.path, "Office.Bills");
	state_folder_clear(&f);
	CHECK_INT(state_folder_rename(st, 999, "A", "B", &e), -ENOENT);
	CHECK_INT(state_folder_set_uidvalidity(st, 999, 1, &e), -ENOENT);
	f = (struct state_folder){ .id = 999 };
	CHECK_INT(state_folder_save(st, &f, &e), -ENOENT);
	state_close(&st);
	free(dir);
}

static void check_same_msg(const struct state_msg *a, const struct state_msg *b)
{
	CHECK_INT(a->folder, b->folder);
	CHECK_STR(a->base, b->base);
	CHECK((a->msgid == NULL) == (b->msgid == NULL));
	if (a->msgid && b->msgid)
		CHECK_STR(a->msgid, b->msgid);
	CHECK_INT(a->hash_len, b->hash_len);
	CHECK(a->hash_len == 0 || memcmp(a->hash, b->hash, a->hash_len) == 0);
	CHECK((a->hash == NULL) == (b->hash == NULL));
	CHECK(a->size == b->size);
	CHECK_INT(a->uid, b->uid);
	CHECK_INT(a->flags, b->flags);
	CHECK_INT(a->state, b->state);
	CHECK_INT(a->since_uid, b->since_uid);
	CHECK_INT(a->src_folder, b->src_folder);
	CHECK_INT(a->src_uid, b->src_uid);
}

static void test_msg_fields(void)
{
	char *dir = new_dir("msgs");
	struct state *st = open_ok(dir);
	struct err e = { 0 };
	int64_t inbox = add_folder(st, "INBOX", "INBOX");
	int64_t arch = add_folder(st, "Archive", "Archive");
	static const unsigned char hash[32] = { 1, 2, 3, 0, 5, [31] = 0xff };
	struct state_msg full = { .folder = inbox,
				  .base = "1700000000.M1P2Q3.host,U=1",
				  .msgid = "<a@b.example>",
				  .hash = hash,
				  .hash_len = sizeof(hash),
				  .size = 5000000000ULL,
				  .uid = 4294967295u,
				  .flags = 2 | 16,
				  .state = STATE_SYNCED };
	struct state_msg bare = msg(inbox, 7, "bare");
	bare.state = STATE_DOWNLOADING;
	struct state_msg up = msg(arch, 0, "up");
	up.state = STATE_UPLOADING;
	up.since_uid = 42;
	up.msgid = "<up@x>";
	CHECK_INT(state_begin(st, &e), 0);
	CHECK_INT(state_msg_add(st, &full, &e), 0);
	CHECK_INT(state_msg_add(st, &bare, &e), 0);
	CHECK_INT(state_msg_add(st, &up, &e), 0);
	CHECK_INT(state_commit(st, &e), 0);
	state_close(&st);

	st = open_ok(dir);
	struct state_msgs l = { 0 };
	CHECK_INT(state_msg_load(st, inbox, &l, &e), 0);
	CHECK_INT(l.n, 2);
	if (l.n == 2) {
		check_same_msg(&l.v[0], &bare);
		check_same_msg(&l.v[1], &full);
	}
	CHECK_INT(state_msg_load(st, arch, &l, &e), 0);
	CHECK_INT(l.n, 1);
	if (l.n == 1)
		check_same_msg(&l.v[0], &up);

	/* Lookups across folders. */
	struct state_msg copy = msg(arch, 9, full.base);
	copy.msgid = full.msgid;
	copy.size = full.size;
	CHECK_INT(state_msg_add(st, &copy, &e), 0);
	CHECK_INT(state_msg_find_base(st, full.base, &l, &e), 0);
	CHECK_INT(l.n, 2);
	CHECK_INT(state_msg_find_msgid(st, "<a@b.example>", full.size, &l, &e), 0);
	CHECK_INT(l.n, 2);
	CHECK_INT(state_msg_find_msgid(st, "<a@b.example>", 1, &l, &e), 0);
	CHECK_INT(l.n, 0);
	CHECK_INT(state_msg_find_msgid(st, "<up@x>", 0, &l, &e), 0);
	CHECK_INT(l.n, 1);
	CHECK_INT(state_msg_find_base(st, "nothing", &l, &e), 0);
	CHECK_INT(l.n, 0);
	size_t n = 0;
	CHECK_INT(state_msg_count(st, inbox, &n, &e), 0);
	CHECK_INT(n, 2);

	/* Keys: by UID and by base name; duplicates and misses. */
	CHECK_INT(state_msg_add(st, &bare, &e), -EEXIST);
	CHECK(strstr(e.msg, state_path(st)) != NULL);
	struct state_msg other = msg(inbox, 7, "other");
	CHECK_INT(state_msg_add(st, &other, &e), -EEXIST);
	CHECK_INT(state_msg_set_flags(st, inbox, STATE_UID(7), 8, &e), 0);
	CHECK_INT(state_msg_set_flags(st, inbox, STATE_BASE(full.base), 1, &e), 0);
	CHECK_INT(state_msg_set_flags(st, inbox, STATE_UID(8), 1, &e), -ENOENT);
	CHECK(strstr(e.msg, "no UID 8") != NULL);
	CHECK_INT(state_msg_settle(st, inbox, STATE_BASE("bare"), 7, &e), 0);
	CHECK_INT(state_msg_settle(st, arch, STATE_BASE("up"), 9, &e), -EEXIST);
	CHECK_INT(state_msg_settle(st, arch, STATE_BASE("up"), 10, &e), 0);
	CHECK_INT(state_msg_load(st, inbox, &l, &e), 0);
	CHECK_INT(l.v[0].flags, 8);
	CHECK_INT(l.v[0].state, STATE_SYNCED);
	CHECK_INT(l.v[1].flags, 1);
	CHECK_INT(state_msg_load(st, arch, &l, &e), 0);
	CHECK_INT(l.n, 2);
	CHECK_INT(l.v[1].uid, 10);
	CHECK_INT(l.v[1].state, STATE_SYNCED);
	CHECK_INT(l.v[1].since_uid, 0);
	CHECK_INT(state_msg_delete(st, inbox, STATE_UID(7), &e), 0);
	CHECK_INT(state_msg_delete(st, inbox, STATE_BASE(full.base), &e), 0);
	CHECK_INT(state_msg_delete(st, inbox, STATE_BASE(full.base), &e), -ENOENT);
	CHECK_INT(state_msg_count(st, inbox, &n, &e), 0);
	CHECK_INT(n, 0);
	struct state_msg orphan = msg(999, 1, "orphan");
	CHECK_INT(state_msg_add(st, &orphan, &e), -ENOENT);
	state_msgs_free(&l);
	state_close(&st);
	free(dir);
}

static void shuffle(uint32_t *v, size_t n)
{
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = (size_t)rand() % (i + 1);
		uint32_t t = v[i];
		v[i] = v[j];
		v[j] = t;
	}
}

static void test_sorted_load(void)
{
	char *dir = new_dir("sorted");
	struct state *st = open_ok(dir);
	struct err e = { 0 };
	int64_t f = add_folder(st, "INBOX", "INBOX");
	uint32_t uids[500];
	for (size_t i = 0; i < ARRAY_SIZE(uids); i++)
		uids[i] = (uint32_t)(i * 3 + 1);
	shuffle(uids, ARRAY_SIZE(uids));
	CHECK_INT(state_begin(st, &e), 0);
	for (size_t i = 0; i < ARRAY_SIZE(uids); i++) {
		char base[32];
		snprintf(base, sizeof(base), "m%u", uids[i]);
		struct state_msg m = msg(f, uids[i], base);
		CHECK_INT(state_msg_add(st, &m, &e), 0);
		if (i % 100 == 0) {
			snprintf(base, sizeof(base), "up%zu", i);
			m = msg(f, 0, base);
			m.state = STATE_UPLOADING;
			CHECK_INT(state_msg_add(st, &m, &e), 0);
		}
	}
	CHECK_INT(state_commit(st, &e), 0);
	struct state_msgs l = { 0 };
	CHECK_INT(state_msg_load(st, f, &l, &e), 0);
	CHECK_INT(l.n, 505);
	for (size_t i = 0; i < 5 && i < l.n; i++)
		CHECK(l.v[i].uid == 0 && l.v[i].state == STATE_UPLOADING);
	for (size_t i = 5; i < l.n; i++)
		CHECK_INT(l.v[i].uid, (i - 5) * 3 + 1);
	const struct state_msg *m = state_msgs_uid(&l, 301);
	CHECK(m && m->uid == 301 && strcmp(m->base, "m301") == 0);
	CHECK(state_msgs_uid(&l, 302) == NULL);
	CHECK(state_msgs_uid(&l, 0) == NULL);
	CHECK(state_msgs_uid(&l, 100000) == NULL);
	state_msgs_free(&l);
	CHECK(state_msgs_uid(&l, 1) == NULL);
	state_close(&st);
	free(dir);
}

/* A lean load leaves out the identities of rows that have a UID, and keeps
 * everything else; a row that lost its UID (an upload, or after a new
 * UIDVALIDITY) keeps its identity, which pairing needs. */
static void test_lean_load(void)
{
	char *dir = new_dir("lean");
	struct state *st = open_ok(dir);
	struct err e = { 0 };
	int64_t f = add_folder(st, "INBOX", "INBOX");
	unsigned char hash[32];
	memset(hash, 0xab, sizeof(hash));
	CHECK_INT(state_begin(st, &e), 0);
	struct state_msg m = msg(f, 7, "seven");
	m.msgid = "<seven@example.org>", m.hash = hash, m.hash_len = sizeof(hash), m.flags = 5;
	CHECK_INT(state_msg_add(st, &m, &e), 0);
	m = msg(f, 0, "upload");
	m.msgid = "<up@example.org>", m.hash = hash, m.hash_len = sizeof(hash);
	m.state = STATE_UPLOADING, m.since_uid = 8;
	CHECK_INT(state_msg_add(st, &m, &e), 0);
	CHECK_INT(state_commit(st, &e), 0);

	struct state_msgs l = { 0 };
	CHECK_INT(state_msg_load_lean(st, f, &l, &e), 0);
	CHECK_INT(l.n, 2);
	if (l.n == 2) {
		CHECK(l.v[0].uid == 0 && strcmp(l.v[0].base, "upload") == 0);
		CHECK_STR(l.v[0].msgid, "<up@example.org>");
		CHECK(l.v[0].hash_len == 32 && l.v[0].hash[0] == 0xab);
		CHECK(l.v[0].state == STATE_UPLOADING && l.v[0].since_uid == 8);
		CHECK(l.v[1].uid == 7 && strcmp(l.v[1].base, "seven") == 0);
		CHECK(l.v[1].msgid == NULL && l.v[1].hash == NULL && l.v[1].hash_len == 0);
		CHECK(l.v[1].flags == 5 && l.v[1].size == 1007 && l.v[1].state == STATE_SYNCED);
	}
	/* The full load still has them. */
	CHECK_INT(state_msg_load(st, f, &l, &e), 0);
	CHECK(l.n == 2 && l.v[1].msgid && strcmp(l.v[1].msgid, "<seven@example.org>") == 0);

	CHECK_INT(state_begin(st, &e), 0);
	CHECK_INT(state_folder_set_uidvalidity(st, f, 99, &e), 0);
	CHECK_INT(state_folder_set_uidvalidity(st, f, 100, &e), 0);
	CHECK_INT(state_commit(st, &e), 0);
	CHECK_INT(state_msg_load_lean(st, f, &l, &e), 0);
	CHECK_INT(l.n, 2);
	for (size_t i = 0; i < l.n; i++)
		CHECK(l.v[i].uid == 0 && l.v[i].msgid && l.v[i].hash_len == 32);
	state_msgs_free(&l);
	state_close(&st);
	free(dir);
}

static void test_large_folder(void)
{
	enum { N = 100000 };
	char *dir = new_dir("large");
	struct state *st = open_ok(dir);
	struct err e = { 0 };
	int64_t f = add_folder(st, "INBOX", "INBOX");
	unsigned char hash[32];
	double t0 = now_ms();
	CHECK_INT(state_begin(st, &e), 0);
	for (uint32_t uid = 1; uid <= N; uid++) {
		char base[80], msgid[80];
		snprintf(base, sizeof(base), "1700%06u.M%uP12345Q%u.mailhost.example.org,U=%u",
			 uid, uid * 7, uid % 13, uid);
		snprintf(msgid, sizeof(msgid), "<%u.%u@mail.example.org>", uid * 31, uid);
		memset(hash, (int)(uid & 0xff), sizeof(hash));
		struct state_msg m = { .folder = f, .uid = uid, .base = base, .msgid = msgid,
				       .hash = hash, .hash_len = sizeof(hash),
				       .size = 2000 + uid % 5000, .flags = uid % 64 };
		int rc = state_msg_add(st, &m, &e);
		if (rc) {
			CHECK_INT(rc, 0);
			break;
		}
	}
	CHECK_INT(state_commit(st, &e), 0);
	double t1 = now_ms();
	state_close(&st);
	double t2 = now_ms();
	st = open_ok(dir);
	double t3 = now_ms(), c3 = cpu_ms();
	struct state_msgs l = { 0 };
	CHECK_INT(state_msg_load(st, f, &l, &e), 0);
	double t4 = now_ms(), c4 = cpu_ms();
	/* The engine keeps a list per folder: a reload reuses its memory. */
	CHECK_INT(state_msg_load(st, f, &l, &e), 0);
	double t5 = now_ms(), c5 = cpu_ms();
	fprintf(stderr,
		"state: %d rows: insert+commit %.1f ms, close %.1f ms, open %.1f ms, "
		"load %.1f ms (cpu %.1f), reload %.1f ms (cpu %.1f)\n",
		N, t1 - t0, t2 - t1, t3 - t2, t4 - t3, c4 - c3, t5 - t4, c5 - c4);
	CHECK_INT(l.n, N);
	bool ok = l.n == N;
	for (size_t i = 0; ok && i < l.n; i++) {
		const struct state_msg *m = &l.v[i];
		uint32_t uid = (uint32_t)i + 1;
		char msgid[80];
		snprintf(msgid, sizeof(msgid), "<%u.%u@mail.example.org>", uid * 31, uid);
		ok = m->uid == uid && m->flags == uid % 64 && m->size == 2000 + uid % 5000 &&
		     m->hash_len == 32 && m->hash[31] == (uid & 0xff) && strstr(m->base, ",U=") &&
		     strcmp(m->msgid, msgid) == 0;
	}
	CHECK(ok);
	state_msgs_free(&l);
	state_close(&st);
	free(dir);
}

static void test_rollback(void)
{
	char *dir = new_dir("rollback");
	struct state *st = open_ok(dir);
	struct err e = { 0 };
	int64_t f = add_folder(st, "INBOX", "INBOX");
	CHECK_INT(state_begin(st, &e), 0);
	add_folder(st, "Junk", "Junk");
	for (uint32_t uid = 1; uid <= 100; uid++) {
		char base[16];
		snprintf(base, sizeof(base), "b%u", uid);
		struct state_msg m = msg(f, uid, base);
		CHECK_INT(state_msg_add(st, &m, &e), 0);
	}
	CHECK_INT(state_rollback(st, &e), 0);
	CHECK_INT(state_rollback(st, &e), 0);
	size_t n = 1;
	CHECK_INT(state_msg_count(st, f, &n, &e), 0);
	CHECK_INT(n, 0);
	struct state_folder *v;
	CHECK_INT(state_folder_list(st, &v, &n, &e), 0);
	CHECK_INT(n, 1);
	state_folder_list_free(&v, n);
	/* An open transaction is discarded by close. */
	CHECK_INT(state_begin(st, &e), 0);
	struct state_msg m = msg(f, 1, "b1");
	CHECK_INT(state_msg_add(st, &m, &e), 0);
	state_close(&st);
	st = open_ok(dir);
	CHECK_INT(state_msg_count(st, f, &n, &e), 0);
	CHECK_INT(n, 0);
	state_close(&st);
	free(dir);
}

/* In a child: writes rows 1..n of folder INBOX in one transaction and is
 * killed by SIGKILL before or right after the commit. */
static void child_write_and_die(const char *dir, uint32_t n, bool commit)
{
	struct state *st = NULL;
	struct err e = { 0 };
	if (state_open(dir, "acct", &st, &e))
		_exit(2);
	struct state_folder f;
	if (state_folder_get(st, "INBOX", "INBOX", &f, &e) || state_begin(st, &e))
		_exit(3);
	for (uint32_t uid = 1; uid <= n; uid++) {
		char base[16];
		snprintf(base, sizeof(base), "k%u", uid);
		struct state_msg m = msg(f.id, uid, base);
		if (state_msg_add(st, &m, &e))
			_exit(4);
	}
	if (commit && state_commit(st, &e))
		_exit(5);
	raise(SIGKILL);
	_exit(6);
}

static void run_killed_child(const char *dir, uint32_t n, bool commit)
{
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		child_write_and_die(dir, n, commit);
	int status;
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

static size_t inbox_count(struct state *st)
{
	struct state_folder f;
	struct err e = { 0 };
	size_t n = 0;
	CHECK_INT(state_folder_get(st, "INBOX", "INBOX", &f, &e), 0);
	CHECK_INT(state_msg_count(st, f.id, &n, &e), 0);
	state_folder_clear(&f);
	return n;
}

static void test_kill_around_commit(void)
{
	char *dir = new_dir("kill");
	struct state *st = open_ok(dir);
	add_folder(st, "INBOX", "INBOX");
	state_close(&st);

	run_killed_child(dir, 1000, false);
	st = open_ok(dir);
	CHECK_INT(inbox_count(st), 0);
	state_close(&st);

	run_killed_child(dir, 1000, true);
	st = open_ok(dir);
	CHECK_INT(inbox_count(st), 1000);
	state_close(&st);
	free(dir);
}

/* In a child: commits batches of `batch` rows forever, writing the number of
 * each committed batch to fd. */
static void child_commit_forever(const char *dir, int fd, uint32_t batch)
{
	struct state *st = NULL;
	struct err e = { 0 };
	struct state_folder f;
	if (state_open(dir, "acct", &st, &e) || state_folder_get(st, "INBOX", "INBOX", &f, &e))
		_exit(2);
	for (uint32_t b = 0;; b++) {
		if (state_begin(st, &e))
			_exit(3);
		for (uint32_t i = 1; i <= batch; i++) {
			char base[24];
			snprintf(base, sizeof(base), "r%u", b * batch + i);
			struct state_msg m = msg(f.id, b * batch + i, base);
			if (state_msg_add(st, &m, &e))
				_exit(4);
		}
		if (state_commit(st, &e) || write(fd, &b, sizeof(b)) != sizeof(b))
			_exit(5);
	}
}

/* kill -9 at an arbitrary moment: afterwards every committed batch is there
 * whole, at most one more (committed but not yet reported), nothing partial. */
static void test_kill_anywhere(void)
{
	enum { BATCH = 50 };
	for (int round = 0; round < 5; round++) {
		char name[32];
		snprintf(name, sizeof(name), "anywhere%d", round);
		char *dir = new_dir(name);
		int fds[2];
		CHECK(pipe(fds) == 0);
		pid_t pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			close(fds[0]);
			child_commit_forever(dir, fds[1], BATCH);
		}
		close(fds[1]);
		uint32_t b, last = 0;
		for (int i = 0; i < 3 + round && read(fds[0], &b, sizeof(b)) == sizeof(b); i++)
			last = b;
		usleep((useconds_t)(rand() % 3000));
		kill(pid, SIGKILL);
		int status;
		CHECK(waitpid(pid, &status, 0) == pid);
		CHECK(WIFSIGNALED(status));
		while (read(fds[0], &b, sizeof(b)) == sizeof(b))
			last = b;
		close(fds[0]);

		struct state *st = open_ok(dir);
		size_t n = inbox_count(st);
		CHECK_INT(n % BATCH, 0);
		CHECK(n / BATCH >= last + 1 && n / BATCH <= last + 2);
		struct state_folder f;
		struct state_msgs l = { 0 };
		struct err e = { 0 };
		CHECK_INT(state_folder_get(st, "INBOX", "INBOX", &f, &e), 0);
		CHECK_INT(state_msg_load(st, f.id, &l, &e), 0);
		for (size_t i = 0; i < l.n; i++)
			CHECK_INT(l.v[i].uid, i + 1);
		state_folder_clear(&f);
		state_msgs_free(&l);
		state_close(&st);
		free(dir);
	}
}

static void test_pending_and_move(void)
{
	char *dir = new_dir("pending");
	struct state *st = open_ok(dir);
	struct err e = { 0 };
	int64_t a = add_folder(st, "A", "A"), b = add_folder(st, "B", "B");
	struct state_msg m1 = msg(a, 1, "one"), m2 = msg(a, 2, "two"), m3 = msg(b, 0, "three");
	static const unsigned char hash[4] = { 9, 8, 7, 6 };
	m1.msgid = "<one@x>";
	m1.hash = hash;
	m1.hash_len = sizeof(hash);
	m1.flags = 16;
	m2.state = STATE_DOWNLOADING;
	m3.state = STATE_UPLOADING;
	m3.since_uid = 17;
	CHECK_INT(state_begin(st, &e), 0);
	CHECK_INT(state_msg_add(st, &m1, &e), 0);
	CHECK_INT(state_msg_add(st, &m2, &e), 0);
	CHECK_INT(state_msg_add(st, &m3, &e), 0);
	/* The reader moved "one" from A to B (rewritten, so a new base name). */
	CHECK_INT(state_msg_move(st, a, 1, b, "one-moved", 30, &e), 0);
	CHECK_INT(state_commit(st, &e), 0);

	/* A move whose original has no row, or whose base name is taken in the
	 * destination, changes nothing. */
	CHECK_INT(state_msg_move(st, a, 99, b, "ghost", 30, &e), -ENOENT);
	CHECK(strstr(e.msg, "no UID 99") != NULL);
	CHECK_INT(state_msg_move(st, a, 2, b, "three", 30, &e), -EEXIST);
	state_close(&st);

	st = open_ok(dir);
	struct state_msgs l = { 0 };
	CHECK_INT(state_msg_pending(st, &l, &e), 0);
	CHECK_INT(l.n, 3);
	if (l.n == 3) {
		check_same_msg(&l.v[0], &m2);
		/* The original's row, now in B: its Message-ID, hash, size and
		 * flags describe the server copy the move makes. */
		struct state_msg want = m1;
		want.folder = b;
		want.base = "one-moved";
		want.uid = 0;
		want.state = STATE_MOVING;
		want.since_uid = 30;
		want.src_folder = a;
		want.src_uid = 1;
		check_same_msg(&l.v[1], &want);
		check_same_msg(&l.v[2], &m3);
	}
	CHECK_INT(state_msg_load(st, a, &l, &e), 0);
	CHECK_INT(l.n, 1);
	CHECK_INT(state_msg_find_base(st, "ghost", &l, &e), 0);
	CHECK_INT(l.n, 0);

	/* Resolution: the download is in place, the upload and the move found
	 * their copies on the server. */
	CHECK_INT(state_begin(st, &e), 0);
	CHECK_INT(state_msg_settle(st, a, STATE_UID(2), 2, &e), 0);
	CHECK_INT(state_msg_settle(st, b, STATE_BASE("three"), 5, &e), 0);
	CHECK_INT(state_msg_settle(st, b, STATE_BASE("one-moved"), 6, &e), 0);
	CHECK_INT(state_commit(st, &e), 0);
	CHECK_INT(state_msg_pending(st, &l, &e), 0);
	CHECK_INT(l.n, 0);
	CHECK_INT(state_msg_load(st, b, &l, &e), 0);
	CHECK_INT(l.n, 2);
	if (l.n == 2) {
		CHECK_INT(l.v[1].uid, 6);
		CHECK_INT(l.v[1].flags, 16);
		CHECK_INT(l.v[1].src_folder, 0);
		CHECK_INT(l.v[1].src_uid, 0);
	}
	state_msgs_free(&l);
	state_close(&st);
	free(dir);
}

static void test_uidvalidity_and_delete(void)
{
	char *dir = new_dir("uidvalidity");
	struct state *st = open_ok(dir);
	struct err e = { 0 };
	int64_t a = add_folder(st, "A", "A"), b = add_folder(st, "B", "B");
	CHECK_INT(state_folder_set_uidvalidity(st, a, 100, &e), 0);
	struct state_msg m1 = msg(a, 1, "one"), m2 = msg(a, 2, "two"), m4 = msg(a, 4, "four");
	struct state_msg m3 = msg(a, 0, "up");
	m3.state = STATE_UPLOADING;
	m3.since_uid = 3;
	CHECK_INT(state_begin(st, &e), 0);
	CHECK_INT(state_msg_add(st, &m1, &e), 0);
	CHECK_INT(state_msg_add(st, &m2, &e), 0);
	CHECK_INT(state_msg_add(st, &m3, &e), 0);
	CHECK_INT(state_msg_add(st, &m4, &e), 0);
	CHECK_INT(state_msg_move(st, a, 4, b, "moved", 0, &e), 0);
	struct state_folder f;
	CHECK_INT(state_folder_get(st, "A", "A", &f, &e), 0);
	f.uidnext = 50;
	f.highestmodseq = 77;
	CHECK_INT(state_folder_save(st, &f, &e), 0);
	state_folder_clear(&f);
	CHECK_INT(state_commit(st, &e), 0);

	/* The same value changes nothing. */
	CHECK_INT(state_folder_set_uidvalidity(st, a, 100, &e), 0);
	struct state_msgs l = { 0 };
	CHECK_INT(state_msg_load(st, a, &l, &e), 0);
	CHECK(l.n == 3 && l.v[1].uid == 1 && l.v[2].uid == 2);

	/* A new UIDVALIDITY forgets every UID; the engine re-matches in the
	 * same transaction, here swapping two UIDs, which no order of
	 * one-by-one updates could do without forgetting first. */
	CHECK_INT(state_begin(st, &e), 0);
	CHECK_INT(state_folder_set_uidvalidity(st, a, 200, &e), 0);
	CHECK_INT(state_msg_load(st, a, &l, &e), 0);
	CHECK_INT(l.n, 3);
	for (size_t i = 0; i < l.n; i++)
		CHECK(l.v[i].uid == 0 && l.v[i].since_uid == 0);
	CHECK_INT(state_msg_settle(st, a, STATE_BASE("one"), 2, &e), 0);
	CHECK_INT(state_msg_settle(st, a, STATE_BASE("two"), 1, &e), 0);
	CHECK_INT(state_commit(st, &e), 0);
	CHECK_INT(state_folder_get(st, "A", "A", &f, &e), 0);
	CHECK_INT(f.uidvalidity, 200);
	CHECK_INT(f.uidnext, 0);
	CHECK(f.highestmodseq == 0);
	state_folder_clear(&f);
	CHECK_INT(state_msg_load(st, a, &l, &e), 0);
	CHECK(l.n == 3 && strcmp(l.v[1].base, "two") == 0 && strcmp(l.v[2].base, "one") == 0);
	CHECK_INT(state_msg_pending(st, &l, &e), 0);
	CHECK_INT(l.n, 2);
	if (l.n == 2) {
		CHECK_STR(l.v[0].base, "up");
		CHECK_STR(l.v[1].base, "moved");
		CHECK_INT(l.v[1].src_folder, 0);
		CHECK_INT(l.v[1].src_uid, 0);
	}

	/* Deleting a folder takes its rows along. */
	CHECK_INT(state_folder_delete(st, a, &e), 0);
	CHECK_INT(state_folder_delete(st, a, &e), -ENOENT);
	size_t n = 1;
	CHECK_INT(state_msg_count(st, a, &n, &e), 0);
	CHECK_INT(n, 0);
	CHECK_INT(state_msg_count(st, b, &n, &e), 0);
	CHECK_INT(n, 1);
	state_msgs_free(&l);
	state_close(&st);
	free(dir);
}

static void test_folder_delete_sources(void)
{
	char *dir = new_dir("delsrc");
	struct state *st = open_ok(dir);
	struct err e = { 0 };
	int64_t a = add_folder(st, "A", "A"), b = add_folder(st, "B", "B");
	struct state_msg m = msg(a, 4, "x");
	CHECK_INT(state_msg_add(st, &m, &e), 0);
	CHECK_INT(state_msg_move(st, a, 4, b, "y", 0, &e), 0);
	CHECK_INT(state_folder_delete(st, a, &e), 0);
	struct state_msgs l = { 0 };
	CHECK_INT(state_msg_load(st, b, &l, &e), 0);
	CHECK_INT(l.n, 1);
	if (l.n == 1) {
		CHECK_INT(l.v[0].state, STATE_MOVING);
		CHECK_INT(l.v[0].src_folder, 0);
		CHECK_INT(l.v[0].src_uid, 0);
	}
	state_msgs_free(&l);
	state_close(&st);
	free(dir);
}

static void write_file(const char *path, const void *p, size_t n, off_t at)
{
	int fd = open(path, O_WRONLY | O_CREAT, 0600);
	CHECK(fd >= 0);
	CHECK(pwrite(fd, p, n, at) == (ssize_t)n);
	close(fd);
}

static void test_damaged_files(void)
{
	char *dir = new_dir("damaged");
	char *path = xasprintf("%s/acct.db", dir);
	struct state *st = NULL;
	struct err e = { 0 };

	/* Not SQLite at all. */
	char junk[8192];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (char)(i * 37 + 11);
	write_file(path, junk, sizeof(junk), 0);
	CHECK_INT(state_open(dir, "acct", &st, &e), -EUCLEAN);
	CHECK(st == NULL);
	CHECK(strstr(e.msg, path) != NULL && strstr(e.msg, "damaged") != NULL);
	fprintf(stderr, "state: garbage file: %s\n", e.msg);
	unlink(path);

	/* Another program's SQLite file is refused and left alone. */
	CHECK_INT(raw_sql(path, "CREATE TABLE notes (x)"), -1);
	CHECK_INT(state_open(dir, "acct", &st, &e), -EUCLEAN);
	CHECK(strstr(e.msg, path) != NULL && strstr(e.msg, "not a mailferry") != NULL);
	fprintf(stderr, "state: foreign file: %s\n", e.msg);
	CHECK_INT(raw_sql(path, "SELECT count(*) FROM notes"), 0);
	unlink(path);

	/* Ours, with every page after the first overwritten. */
	st = open_ok(dir);
	int64_t f = add_folder(st, "INBOX", "INBOX");
	CHECK_INT(state_begin(st, &e), 0);
	for (uint32_t uid = 1; uid <= 2000; uid++) {
		char base[16];
		snprintf(base, sizeof(base), "d%u", uid);
		struct state_msg m = msg(f, uid, base);
		CHECK_INT(state_msg_add(st, &m, &e), 0);
	}
	CHECK_INT(state_commit(st, &e), 0);
	state_close(&st);
	struct stat sb;
	CHECK(stat(path, &sb) == 0);
	long long page = raw_sql(path, "PRAGMA page_size");
	for (off_t at = page; at < sb.st_size; at += (off_t)sizeof(junk))
		write_file(path, junk, sizeof(junk), at);
	int rc = state_open(dir, "acct", &st, &e);
	if (rc == 0) {
		struct state_msgs l = { 0 };
		rc = state_msg_load(st, f, &l, &e);
		state_msgs_free(&l);
		state_close(&st);
	}
	CHECK_INT(rc, -EUCLEAN);
	CHECK(strstr(e.msg, path) != NULL && strstr(e.msg, "damaged") != NULL);
	fprintf(stderr, "state: damaged pages: %s\n", e.msg);
	free(path), free(dir);
}

static void test_newer_version(void)
{
	char *dir = new_dir("newer");
	struct state *st = open_ok(dir);
	char *path = xstrdup(state_path(st));
	state_close(&st);
	raw_sql(path, "PRAGMA user_version = 99");
	struct err e = { 0 };
	CHECK_INT(state_open(dir, "acct", &st, &e), -EPROTONOSUPPORT);
	CHECK(st == NULL);
	CHECK(strstr(e.msg, path) != NULL && strstr(e.msg, "newer") != NULL);
	fprintf(stderr, "state: newer file: %s\n", e.msg);
	CHECK_INT(raw_sql(path, "PRAGMA user_version"), 99);
	free(path), free(dir);
}

int main(void)
{
	const char *t = getenv("TMPDIR");
	tmp_root = xasprintf("%s/mf-state-XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(tmp_root)) {
		perror("mkdtemp");
		return 1;
	}
	srand((unsigned)time(NULL));
	RUN(test_create_and_modes);
	RUN(test_bad_places);
	RUN(test_folder_fields);
	RUN(test_msg_fields);
	RUN(test_sorted_load);
	RUN(test_lean_load);
	RUN(test_large_folder);
	RUN(test_rollback);
	RUN(test_kill_around_commit);
	RUN(test_kill_anywhere);
	RUN(test_pending_and_move);
	RUN(test_uidvalidity_and_delete);
	RUN(test_folder_delete_sources);
	RUN(test_damaged_files);
	RUN(test_newer_version);
	nftw(tmp_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(tmp_root);
	CHECK_DONE();
}
