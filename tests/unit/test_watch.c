/* The Maildir watcher on a real loop and real directories. */
#include "check.h"
#include "core/xalloc.h"
#include "watch/watch.h"

#include <fcntl.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[] = "/tmp/mf-test-watch-XXXXXX";

struct seen {
	char folders[8][256];
	unsigned what[8];
	size_t n, batches;
};

static void on_change(void *ctx, const char *folder, unsigned what)
{
	struct seen *s = ctx;
	if (s->n < 8) {
		snprintf(s->folders[s->n], sizeof(s->folders[0]), "%s", folder ? folder : "");
		s->what[s->n++] = what;
	}
}

static void make_maildir(const char *path)
{
	char d[512];
	mkdir(path, 0700);
	snprintf(d, sizeof(d), "%s/new", path);
	mkdir(d, 0700);
	snprintf(d, sizeof(d), "%s/cur", path);
	mkdir(d, 0700);
	snprintf(d, sizeof(d), "%s/tmp", path);
	mkdir(d, 0700);
}

static void touch(const char *path)
{
	int fd = open(path, O_CREAT | O_WRONLY, 0600);
	if (fd < 0 || close(fd) < 0)
		BUG("cannot create %s", path);
}

/* Runs the loop until something was seen or 2 s passed. */
static void settle(uv_loop_t *loop, struct seen *s)
{
	for (int i = 0; i < 200 && s->n == 0; i++)
		uv_run(loop, UV_RUN_NOWAIT), usleep(10000);
	for (int i = 0; i < 5; i++) /* anything late */
		uv_run(loop, UV_RUN_NOWAIT), usleep(10000);
}

static void test_messages_and_echo(void)
{
	char a[512], b[512], f[1024], g[1024];
	snprintf(a, sizeof(a), "%s/A", root);
	snprintf(b, sizeof(b), "%s/B", root);
	make_maildir(a);
	make_maildir(b);
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct seen s = { 0 };
	struct err e;
	struct watch *w = watch_new(&loop, on_change, &s, &e);
	CHECK(w != NULL);
	CHECK_INT(watch_folder(w, a, &e), 0);
	CHECK_INT(watch_folder(w, b, &e), 0);
	CHECK_INT(watch_folder(w, a, &e), 0); /* again: nothing more */
	CHECK_INT(watch_count(w), 4);

	snprintf(f, sizeof(f), "%s/new/1.x.host", a);
	touch(f);
	settle(&loop, &s);
	CHECK_INT(s.n, 1);
	CHECK_STR(s.folders[0], a);
	CHECK_INT(s.what[0], WATCH_MESSAGES);

	/* a rename from A into B: both folders in one batch */
	s.n = 0;
	snprintf(g, sizeof(g), "%s/cur/1.x.host:2,S", b);
	CHECK_INT(rename(f, g), 0);
	settle(&loop, &s);
	CHECK_INT(s.n, 2);

	/* our own rename, announced: no report */
	s.n = 0;
	snprintf(f, sizeof(f), "%s/cur/1.x.host:2,FS", b);
	watch_expect(w, b, "1.x.host:2,S", WATCH_LEAVE);
	watch_expect(w, b, "1.x.host:2,FS", WATCH_ARRIVE);
	watch_expect(w, "/not/watched", "x", WATCH_ARRIVE); /* noted nowhere */
	CHECK_INT(rename(g, f), 0);
	settle(&loop, &s);
	CHECK_INT(s.n, 0);
	/* the expectation is used up: a reader's rename back is reported */
	CHECK_INT(rename(f, g), 0);
	settle(&loop, &s);
	CHECK_INT(s.n, 1);
	/* a file we wrote that a reader then removes: the removal is not ours */
	s.n = 0;
	watch_expect(w, b, "1.x.host:2,S", WATCH_ARRIVE);
	CHECK_INT(unlink(g), 0);
	settle(&loop, &s);
	CHECK_INT(s.n, 1);

	watch_free(&w);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK_INT(uv_loop_close(&loop), 0);
}

static void test_tree_and_gone_folders(void)
{
	char c[512], d[512];
	snprintf(c, sizeof(c), "%s/C", root);
	make_maildir(c);
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct seen s = { 0 };
	struct err e;
	struct watch *w = watch_new(&loop, on_change, &s, &e);
	CHECK_INT(watch_tree(w, root, &e), 0);
	CHECK_INT(watch_folder(w, c, &e), 0);
	snprintf(d, sizeof(d), "%s/D", root);
	make_maildir(d);
	settle(&loop, &s);
	CHECK(s.n >= 1 && (s.what[0] & WATCH_FOLDERS));
	CHECK_STR(s.folders[0], root);

	/* a watched folder removed: reported, and forgotten on request */
	s.n = 0;
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", c);
	CHECK_INT(system(cmd), 0);
	settle(&loop, &s);
	bool gone = false;
	for (size_t i = 0; i < s.n; i++)
		gone |= strcmp(s.folders[i], c) == 0 && (s.what[i] & WATCH_FOLDERS);
	CHECK(gone);
	watch_forget(w, c);
	CHECK_INT(watch_count(w), 1);
	watch_free(&w);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK_INT(uv_loop_close(&loop), 0);
}

static void test_overflow(void)
{
	char e_dir[512], f[1024];
	snprintf(e_dir, sizeof(e_dir), "%s/E", root);
	make_maildir(e_dir);
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct seen s = { 0 };
	struct err e;
	struct watch *w = watch_new(&loop, on_change, &s, &e);
	CHECK_INT(watch_folder(w, e_dir, &e), 0);
	int max = 16384;
	FILE *q = fopen("/proc/sys/fs/inotify/max_queued_events", "r");
	if (q) {
		if (fscanf(q, "%d", &max) != 1)
			max = 16384;
		fclose(q);
	}
	/* More events than the kernel queues, with nobody reading. */
	for (int i = 0; i < max + 100; i++) {
		snprintf(f, sizeof(f), "%s/new/%d.o.host", e_dir, i);
		touch(f);
	}
	settle(&loop, &s);
	bool overflow = false;
	for (size_t i = 0; i < s.n; i++)
		overflow |= (s.what[i] & WATCH_OVERFLOW) != 0;
	CHECK(overflow);
	watch_free(&w);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK_INT(uv_loop_close(&loop), 0);
}

int main(void)
{
	if (!mkdtemp(root))
		BUG("mkdtemp");
	RUN(test_messages_and_echo);
	RUN(test_tree_and_gone_folders);
	RUN(test_overflow);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", root);
	CHECK_DONE();
}
