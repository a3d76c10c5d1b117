#include "watch/watch.h"

#include "core/log.h"
#include "core/xalloc.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

/* An expectation older than this was not met by an event: forget it. */
#define EXPECT_MS 5000

enum watch_kind { KIND_NEW, KIND_CUR, KIND_TREE };

struct entry {
	int wd;
	enum watch_kind kind;
	char *folder; /* the path the caller gave */
};

struct expect {
	char *folder, *name;
	enum watch_op op;
	uint64_t until; /* uv_now ms */
};

struct change {
	const char *folder; /* borrowed from an entry, or NULL */
	unsigned what;
};

struct watch {
	uv_loop_t *loop;
	int fd;
	uv_poll_t poll;
	watch_cb cb;
	void *ctx;
	struct entry *v;
	size_t n, cap;
	struct expect *expects;
	size_t nexpects, capexpects;
	struct change *changes; /* collected over one read, reported after it */
	size_t nchanges, capchanges;
	bool closing;
};

static void on_readable(uv_poll_t *p, int status, int events);

struct watch *watch_new(uv_loop_t *loop, watch_cb cb, void *ctx, struct err *err)
{
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fd < 0) {
		err_set(err, -errno, ERR_LOCAL, "cannot watch the Maildir (inotify): %s%s",
			strerror(errno),
			errno == EMFILE ? " (raise fs.inotify.max_user_instances)" : "");
		return NULL;
	}
	struct watch *w = xcalloc(1, sizeof(*w));
	w->loop = loop;
	w->fd = fd;
	w->cb = cb;
	w->ctx = ctx;
	uv_poll_init(loop, &w->poll, fd);
	w->poll.data = w;
	uv_poll_start(&w->poll, UV_READABLE, on_readable);
	return w;
}

static void free_entry(struct entry *e)
{
	free(e->folder);
}

static void free_expect(struct expect *x)
{
	free(x->folder);
	free(x->name);
}

static void on_poll_closed(uv_handle_t *h)
{
	struct watch *w = h->data;
	close(w->fd);
	for (size_t i = 0; i < w->n; i++)
		free_entry(&w->v[i]);
	for (size_t i = 0; i < w->nexpects; i++)
		free_expect(&w->expects[i]);
	free(w->v);
	free(w->expects);
	free(w->changes);
	free(w);
}

void watch_free(struct watch **wp)
{
	struct watch *w = *wp;
	if (!w)
		return;
	*wp = NULL;
	w->closing = true;
	uv_poll_stop(&w->poll);
	uv_close((uv_handle_t *)&w->poll, on_poll_closed);
}

static struct entry *find_wd(struct watch *w, int wd)
{
	for (size_t i = 0; i < w->n && wd >= 0; i++)
		if (w->v[i].wd == wd)
			return &w->v[i];
	return NULL;
}

static int add(struct watch *w, const char *folder, const char *dir, enum watch_kind kind,
	       uint32_t mask, struct err *err)
{
	int wd = inotify_add_watch(w->fd, dir, mask | IN_ONLYDIR | IN_DONT_FOLLOW);
	if (wd < 0)
		return err_set(err, -errno, ERR_LOCAL, "cannot watch %s: %s%s", dir,
			       strerror(errno),
			       errno == ENOSPC ? " (raise fs.inotify.max_user_watches)" : "");
	for (size_t i = 0; i < w->n; i++)
		if (w->v[i].wd == wd)
			return 0; /* the same directory again */
	w->v = xgrow(w->v, &w->cap, w->n + 1, sizeof(*w->v));
	w->v[w->n++] = (struct entry){ wd, kind, xstrdup(folder) };
	return 0;
}

/* Messages arrive by rename or link, leave by rename or unlink; a reader's
 * flag change is a rename within or between new/ and cur/. */
#define MESSAGE_EVENTS                                                                             \
	(IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF |    \
	 IN_EXCL_UNLINK)

int watch_folder(struct watch *w, const char *path, struct err *err)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/new", path);
	int rc = add(w, path, dir, KIND_NEW, MESSAGE_EVENTS, err);
	if (rc == 0) {
		snprintf(dir, sizeof(dir), "%s/cur", path);
		rc = add(w, path, dir, KIND_CUR, MESSAGE_EVENTS, err);
	}
	return rc;
}

int watch_tree(struct watch *w, const char *dir, struct err *err)
{
	return add(w, dir, dir, KIND_TREE,
		   IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF, err);
}

void watch_forget(struct watch *w, const char *path)
{
	size_t k = 0;
	for (size_t i = 0; i < w->n; i++) {
		if (strcmp(w->v[i].folder, path) == 0) {
			inotify_rm_watch(w->fd, w->v[i].wd);
			free_entry(&w->v[i]);
			continue;
		}
		w->v[k++] = w->v[i];
	}
	w->n = k;
}

void watch_expect(struct watch *w, const char *path, const char *name, enum watch_op op)
{
	bool watched = false;
	for (size_t i = 0; i < w->n && !watched; i++)
		watched = w->v[i].wd >= 0 && w->v[i].kind != KIND_TREE &&
			  strcmp(w->v[i].folder, path) == 0;
	if (!watched)
		return;
	w->expects = xgrow(w->expects, &w->capexpects, w->nexpects + 1, sizeof(*w->expects));
	w->expects[w->nexpects++] =
		(struct expect){ xstrdup(path), xstrdup(name), op, uv_now(w->loop) + EXPECT_MS };
}

unsigned watch_count(const struct watch *w)
{
	return (unsigned)w->n;
}

/* True (and the expectation used up) when the event on name is ours. */
static bool expected(struct watch *w, const char *folder, const char *name, enum watch_op op)
{
	uint64_t now = uv_now(w->loop);
	bool hit = false;
	size_t k = 0;
	for (size_t i = 0; i < w->nexpects; i++) {
		struct expect *x = &w->expects[i];
		bool match = !hit && x->op == op && strcmp(x->folder, folder) == 0 &&
			     strcmp(x->name, name) == 0;
		if (match || x->until < now) {
			hit |= match;
			free_expect(x);
			continue;
		}
		w->expects[k++] = *x;
	}
	w->nexpects = k;
	return hit;
}

static void note(struct watch *w, const char *folder, unsigned what)
{
	for (size_t i = 0; i < w->nchanges; i++)
		if (w->changes[i].folder == folder ||
		    (folder && w->changes[i].folder && strcmp(w->changes[i].folder, folder) == 0)) {
			w->changes[i].what |= what;
			return;
		}
	w->changes = xgrow(w->changes, &w->capchanges, w->nchanges + 1, sizeof(*w->changes));
	w->changes[w->nchanges++] = (struct change){ folder, what };
}

static void handle(struct watch *w, const struct inotify_event *ev)
{
	if (ev->mask & IN_Q_OVERFLOW) {
		log_warn("event=watch-overflow the kernel dropped Maildir events; rescanning");
		note(w, NULL, WATCH_OVERFLOW);
		return;
	}
	struct entry *e = find_wd(w, ev->wd);
	if (!e)
		return;
	if (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) {
		/* The kernel may hand the number out again: the entry stays (its
		 * name is in use) until watch_forget, but matches no event. */
		if (ev->mask & IN_IGNORED)
			e->wd = -1;
		note(w, e->folder, WATCH_FOLDERS);
		return;
	}
	if (e->kind == KIND_TREE) {
		if (ev->mask & IN_ISDIR)
			note(w, e->folder, WATCH_FOLDERS);
		return;
	}
	enum watch_op op = ev->mask & (IN_CREATE | IN_MOVED_TO) ? WATCH_ARRIVE : WATCH_LEAVE;
	if (ev->len && ev->name[0] != '.' && !expected(w, e->folder, ev->name, op))
		note(w, e->folder, WATCH_MESSAGES);
}

static void on_readable(uv_poll_t *p, int status, int events)
{
	struct watch *w = p->data;
	(void)events;
	char buf[65536] __attribute__((aligned(__alignof__(struct inotify_event))));
	if (status < 0)
		return;
	ssize_t n;
	while ((n = read(w->fd, buf, sizeof(buf))) > 0) {
		for (char *q = buf; q < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)q;
			handle(w, ev);
			q += sizeof(*ev) + ev->len;
		}
	}
	/* Reported after the whole read, so a rename between two folders is
	 * seen as one batch. The callback may change the watch set: copy first. */
	size_t nchanges = w->nchanges;
	struct change *changes = xmalloc((nchanges + 1) * sizeof(*changes));
	char **names = xcalloc(nchanges + 1, sizeof(char *));
	for (size_t i = 0; i < nchanges; i++) {
		changes[i] = w->changes[i];
		names[i] = changes[i].folder ? xstrdup(changes[i].folder) : NULL;
	}
	w->nchanges = 0;
	for (size_t i = 0; i < nchanges; i++) {
		if (!w->closing)
			w->cb(w->ctx, names[i], changes[i].what);
		free(names[i]);
	}
	free(names);
	free(changes);
}
