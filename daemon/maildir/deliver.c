#include "maildir/deliver.h"

#include "core/xalloc.h"
#include "maildir/internal.h"
#include "maildir/name.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Enough concurrent fsyncs for the file system to batch them into one
 * journal commit; more threads only add overhead. */
#define SYNC_THREADS 8
#define CREATE_ATTEMPTS 3

enum dstate {
	D_WRITING,  /* file open in tmp/, taking data */
	D_FINISHED, /* data complete, file still open, not yet synced */
	D_SYNCED,   /* data and mtime durable, file closed, still in tmp/ */
	D_RENAMED,  /* in new/ or cur/, directory not yet synced (inside a commit) */
	D_DONE,
	D_FAILED,
	D_ABORTED,
};

struct maildir_delivery {
	struct maildir_batch *batch; /* the owner */
	struct maildir *m;           /* borrowed */
	enum dstate state;
	int fd;
	int sync_rc;     /* written by a sync thread */
	bool pending;    /* finished; outcome not yet reported by a commit */
	int rc;          /* D_FAILED: the error */
	struct err *err; /* owned, D_FAILED only */
	char *file;      /* owned, from the finish on */
	bool in_new;
	char base[MAILDIR_UNIQUE_MAX];
};

struct maildir_batch {
	struct maildir_delivery **v; /* owned */
	size_t n, cap;
	size_t open_finished; /* deliveries in D_FINISHED */
};

/* One directory fsynced during a commit, and how that went. */
struct dir_sync {
	struct maildir *m;
	enum maildir_sub sub;
	int rc;
};

struct sync_job {
	struct maildir_delivery **v;
	size_t n;
	size_t next; /* taken atomically by the workers */
};

struct maildir_batch *maildir_batch_new(void)
{
	return xcalloc(1, sizeof(struct maildir_batch));
}

/* Kills d: closes and removes its file wherever it is now, keeps the error
 * for later calls and copies it to e. Returns rc. */
static int fail(struct maildir_delivery *d, int rc, const char *what, struct err *e)
{
	if (d->state == D_FINISHED)
		d->batch->open_finished--;
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
	if (d->state == D_RENAMED)
		unlinkat(d->m->fd[maildir_sub_of(d->in_new)], d->file, 0);
	else
		unlinkat(d->m->fd[MAILDIR_TMP], d->base, 0);
	d->state = D_FAILED;
	d->rc = rc;
	d->err = xcalloc(1, sizeof(*d->err));
	maildir_fs_error(d->err, rc, d->m->label, "%s", what);
	if (e)
		*e = *d->err;
	return rc;
}

static int dead(const struct maildir_delivery *d, struct err *e)
{
	if (e)
		*e = *d->err;
	return d->rc;
}

int maildir_batch_add(struct maildir_batch *b, struct maildir *m, struct maildir_delivery **out,
		      struct err *e)
{
	struct maildir_delivery *d = xcalloc(1, sizeof(*d));
	d->batch = b;
	d->m = m;
	for (int i = 0; i < CREATE_ATTEMPTS; i++) {
		maildir_name_unique(d->base);
		d->fd = openat(m->fd[MAILDIR_TMP], d->base, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
			       0600);
		if (d->fd >= 0 || errno != EEXIST)
			break;
	}
	if (d->fd < 0) {
		int rc = maildir_fs_error(e, -errno, m->label, "creating a file in tmp/");
		free(d);
		*out = NULL;
		return rc;
	}
	b->v = xgrow(b->v, &b->cap, b->n + 1, sizeof(*b->v));
	b->v[b->n++] = d;
	*out = d;
	return 0;
}

const char *maildir_delivery_base(const struct maildir_delivery *d)
{
	return d->base;
}

int maildir_delivery_write(struct maildir_delivery *d, const void *p, size_t len, struct err *e)
{
	if (d->state == D_FAILED)
		return dead(d, e);
	BUG_ON(d->state != D_WRITING);
	const char *s = p;
	while (len) {
		ssize_t n = write(d->fd, s, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return fail(d, n < 0 ? -errno : -EIO, "writing a message", e);
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

static void *sync_worker(void *arg)
{
	struct sync_job *job = arg;
	size_t i;
	while ((i = __atomic_fetch_add(&job->next, 1, __ATOMIC_RELAXED)) < job->n) {
		struct maildir_delivery *d = job->v[i];
		/* fsync, not fdatasync: the mtime (the message's date) must last too. */
		d->sync_rc = fsync(d->fd) == 0 ? 0 : -errno;
	}
	return NULL;
}

/* fsyncs v[0..n) on up to SYNC_THREADS threads, this one included. Workers
 * block all signals: they belong to the main thread's loop. Too few threads
 * (pthread_create failing) only makes it slower. */
static void sync_parallel(struct maildir_delivery **v, size_t n)
{
	struct sync_job job = { v, n, 0 };
	pthread_t threads[SYNC_THREADS - 1];
	size_t started = 0, want = n < SYNC_THREADS ? n : SYNC_THREADS;
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (size_t i = 1; i < want; i++)
		if (pthread_create(&threads[started], NULL, sync_worker, &job) == 0)
			started++;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	sync_worker(&job);
	for (size_t i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
}

/* Makes every finished delivery's data durable and closes its file. */
static void sync_finished(struct maildir_batch *b)
{
	struct maildir_delivery **v = xmalloc((b->n ? b->n : 1) * sizeof(*v));
	size_t n = 0;
	for (size_t i = 0; i < b->n; i++)
		if (b->v[i]->state == D_FINISHED)
			v[n++] = b->v[i];
	if (n)
		sync_parallel(v, n);
	for (size_t i = 0; i < n; i++) {
		struct maildir_delivery *d = v[i];
		if (d->sync_rc < 0) {
			fail(d, d->sync_rc, "saving a message to disk", NULL);
			continue;
		}
		int rc = close(d->fd) == 0 ? 0 : -errno;
		d->fd = -1;
		if (rc < 0) {
			fail(d, rc, "saving a message to disk", NULL);
			continue;
		}
		d->state = D_SYNCED;
		b->open_finished--;
	}
	free(v);
}

int maildir_delivery_finish(struct maildir_delivery *d, unsigned flags, const char *unknown,
			    const struct timespec *mtime, struct err *e)
{
	if (d->state == D_FAILED)
		return dead(d, e);
	BUG_ON(d->state != D_WRITING);
	d->in_new = maildir_flags_in_new(flags);
	d->file = maildir_name_build(d->base, strlen(d->base), flags, unknown, d->in_new);
	if (mtime) {
		struct timespec times[2] = { *mtime, *mtime };
		if (futimens(d->fd, times) != 0)
			return fail(d, -errno, "setting a message's date", e);
	}
	/* Start the write-back now, so the commit's fsync has less left to wait
	 * for; an error here shows up again at that fsync. */
	sync_file_range(d->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	d->state = D_FINISHED;
	d->pending = true;
	if (++d->batch->open_finished >= MAILDIR_BATCH_OPEN_MAX)
		sync_finished(d->batch);
	return d->state == D_FAILED ? dead(d, e) : 0;
}

void maildir_delivery_abort(struct maildir_delivery *d)
{
	if (d->state == D_DONE || d->state == D_FAILED || d->state == D_ABORTED)
		return;
	BUG_ON(d->state == D_RENAMED);
	if (d->state == D_FINISHED)
		d->batch->open_finished--;
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
	unlinkat(d->m->fd[MAILDIR_TMP], d->base, 0);
	d->state = D_ABORTED;
}

/* fsyncs d's target directory once per commit; returns how that went. */
static int sync_dir_once(struct dir_sync **syncs, size_t *n, size_t *cap,
			 const struct maildir_delivery *d)
{
	enum maildir_sub sub = maildir_sub_of(d->in_new);
	for (size_t i = 0; i < *n; i++)
		if ((*syncs)[i].m == d->m && (*syncs)[i].sub == sub)
			return (*syncs)[i].rc;
	*syncs = xgrow(*syncs, cap, *n + 1, sizeof(**syncs));
	struct dir_sync *s = &(*syncs)[(*n)++];
	s->m = d->m;
	s->sub = sub;
	s->rc = maildir_sync_sub(d->m, sub);
	return s->rc;
}

/* Renames every synced delivery of this commit into place, then makes the
 * directories durable. */
static void publish(struct maildir_batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		struct maildir_delivery *d = b->v[i];
		if (d->state != D_SYNCED)
			continue;
		enum maildir_sub sub = maildir_sub_of(d->in_new);
		int rc = maildir_rename(d->m->fd[MAILDIR_TMP], d->base, d->m->fd[sub], d->file);
		if (rc < 0) {
			fail(d, rc,
			     sub == MAILDIR_NEW ? "moving a message into new/"
						: "moving a message into cur/",
			     NULL);
			continue;
		}
		d->m->dirty |= 1u << sub;
		d->state = D_RENAMED;
	}
	struct dir_sync *syncs = NULL;
	size_t n = 0, cap = 0;
	for (size_t i = 0; i < b->n; i++) {
		struct maildir_delivery *d = b->v[i];
		if (d->state != D_RENAMED)
			continue;
		int rc = sync_dir_once(&syncs, &n, &cap, d);
		if (rc < 0)
			fail(d, rc, d->in_new ? "making new/ durable" : "making cur/ durable",
			     NULL);
		else
			d->state = D_DONE;
	}
	free(syncs);
}

int maildir_batch_commit(struct maildir_batch *b, struct err *e)
{
	sync_finished(b);
	publish(b);
	int rc = 0;
	for (size_t i = 0; i < b->n; i++) {
		struct maildir_delivery *d = b->v[i];
		if (d->pending && d->state == D_FAILED && rc == 0)
			rc = dead(d, e);
		d->pending = false;
	}
	return rc;
}

void maildir_batch_free(struct maildir_batch **pb)
{
	struct maildir_batch *b = *pb;
	if (!b)
		return;
	for (size_t i = 0; i < b->n; i++) {
		struct maildir_delivery *d = b->v[i];
		maildir_delivery_abort(d);
		free(d->err);
		free(d->file);
		free(d);
	}
	free(b->v);
	free(b);
	*pb = NULL;
}

int maildir_delivery_status(const struct maildir_delivery *d, const struct err **e)
{
	if (e)
		*e = d->state == D_FAILED ? d->err : NULL;
	switch (d->state) {
	case D_DONE:
		return 0;
	case D_FAILED:
		return d->rc;
	case D_ABORTED:
		return -ECANCELED;
	default:
		return -EINPROGRESS;
	}
}

const char *maildir_delivery_file(const struct maildir_delivery *d)
{
	return d->file;
}

bool maildir_delivery_in_new(const struct maildir_delivery *d)
{
	return d->in_new;
}
