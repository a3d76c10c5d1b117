#include "maildir/scan.h"

#include "core/xalloc.h"
#include "maildir/internal.h"
#include "maildir/name.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SCAN_ATTEMPTS 3
#define FINE_MARGIN_NS (100 * 1000000LL)
#define COARSE_MARGIN_NS (2 * 1000000000LL)

int maildir_stamp_read(struct maildir *m, struct maildir_stamp *out, struct err *e)
{
	/* The clock first: a change after this moment lands at or after it. */
	clock_gettime(CLOCK_REALTIME, &out->taken);
	struct stat st;
	if (fstat(m->fd[MAILDIR_NEW], &st) != 0)
		return maildir_fs_error(e, -errno, m->label, "reading new/");
	out->new_mtime = st.st_mtim;
	if (fstat(m->fd[MAILDIR_CUR], &st) != 0)
		return maildir_fs_error(e, -errno, m->label, "reading cur/");
	out->cur_mtime = st.st_mtim;
	return 0;
}

static bool ts_equal(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

bool maildir_stamp_equal(const struct maildir_stamp *a, const struct maildir_stamp *b)
{
	return ts_equal(&a->new_mtime, &b->new_mtime) && ts_equal(&a->cur_mtime, &b->cur_mtime);
}

bool maildir_mtime_trusted(const struct timespec *mtime, const struct timespec *now)
{
	long long margin = mtime->tv_nsec ? FINE_MARGIN_NS : COARSE_MARGIN_NS;
	long long secs = (long long)now->tv_sec - (long long)mtime->tv_sec;
	if (secs > 10)
		return true;
	if (secs < -10)
		return false;
	long long ns = secs * 1000000000LL + (now->tv_nsec - mtime->tv_nsec);
	return ns >= margin;
}

bool maildir_stamp_trusted(const struct maildir_stamp *s)
{
	return maildir_mtime_trusted(&s->new_mtime, &s->taken) &&
	       maildir_mtime_trusted(&s->cur_mtime, &s->taken);
}

static void entries_clear(struct maildir_scan *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].file);
	s->n = 0;
	s->skipped = 0;
}

/* Fills a new entry for file (already parsed as nm). */
static void entry_add(struct maildir_scan *s, size_t *cap, const char *file,
		      const struct maildir_name *nm, bool in_new)
{
	s->v = xgrow(s->v, cap, s->n + 1, sizeof(*s->v));
	struct maildir_entry *en = &s->v[s->n++];
	memset(en, 0, sizeof(*en));
	size_t flen = strlen(file), ulen = strlen(nm->unknown);
	char *mem = xmalloc(flen + 1 + nm->base_len + 1 + ulen + 1);
	memcpy(mem, file, flen + 1);
	char *base = mem + flen + 1;
	memcpy(base, nm->base, nm->base_len);
	base[nm->base_len] = '\0';
	char *unknown = base + nm->base_len + 1;
	memcpy(unknown, nm->unknown, ulen + 1);
	en->file = mem;
	en->base = base;
	en->unknown = unknown;
	en->flags = nm->flags;
	en->in_new = in_new;
}

/* Stats one entry; false when it is not (or no longer) a regular file. */
static bool entry_stat(struct maildir_entry *en, int dirfd, bool *raced)
{
	struct stat st;
	if (fstatat(dirfd, en->file, &st, 0) != 0) {
		*raced = *raced || errno == ENOENT;
		return false;
	}
	en->size = (uint64_t)st.st_size;
	en->mtime = st.st_mtim;
	return S_ISREG(st.st_mode);
}

static int read_sub(struct maildir *m, enum maildir_sub sub, unsigned opts, struct maildir_scan *s,
		    size_t *cap, bool *raced, struct err *e)
{
	int fd = openat(m->fd[sub], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		int rc =
		    maildir_fs_error(e, -errno, m->label, "reading %s/", maildir_sub_name(sub));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	int rc = 0;
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (!de) {
			if (errno)
				rc = maildir_fs_error(e, -errno, m->label, "reading %s/",
						      maildir_sub_name(sub));
			break;
		}
		struct maildir_name nm;
		if (de->d_name[0] == '.' || de->d_type == DT_DIR)
			continue;
		if (maildir_name_parse(de->d_name, &nm) < 0) {
			s->skipped++;
			continue;
		}
		entry_add(s, cap, de->d_name, &nm, sub == MAILDIR_NEW);
		if ((opts & MAILDIR_SCAN_STAT) && !entry_stat(&s->v[s->n - 1], m->fd[sub], raced))
			free(s->v[--s->n].file);
	}
	closedir(d);
	return rc;
}

static int entry_cmp(const void *pa, const void *pb)
{
	const struct maildir_entry *a = pa, *b = pb;
	int c = strcmp(a->base, b->base);
	if (c)
		return c;
	if (a->in_new != b->in_new)
		return a->in_new ? -1 : 1;
	return strcmp(a->file, b->file);
}

static void sort_and_mark(struct maildir_scan *s)
{
	if (s->n)
		qsort(s->v, s->n, sizeof(*s->v), entry_cmp);
	s->dup_bases = 0;
	for (size_t i = 1; i < s->n; i++) {
		if (strcmp(s->v[i - 1].base, s->v[i].base) != 0)
			continue;
		if (!s->v[i - 1].dup)
			s->dup_bases++;
		s->v[i - 1].dup = s->v[i].dup = true;
	}
}

/* One listing: stamp, new/ then cur/, stamp again; *stable when nothing moved. */
static int scan_once(struct maildir *m, unsigned opts, struct maildir_scan *s, size_t *cap,
		     bool *stable, struct err *e)
{
	struct maildir_stamp after;
	bool raced = false;
	entries_clear(s);
	int rc = maildir_stamp_read(m, &s->stamp, e);
	if (rc == 0)
		rc = read_sub(m, MAILDIR_NEW, opts, s, cap, &raced, e);
	if (rc == 0)
		rc = read_sub(m, MAILDIR_CUR, opts, s, cap, &raced, e);
	if (rc == 0)
		rc = maildir_stamp_read(m, &after, e);
	*stable = rc == 0 && !raced && maildir_stamp_equal(&s->stamp, &after);
	return rc;
}

int maildir_scan(struct maildir *m, unsigned opts, struct maildir_scan **out, struct err *e)
{
	struct maildir_scan *s = xcalloc(1, sizeof(*s));
	size_t cap = 0;
	bool stable = false;
	int rc = 0;
	for (int i = 0; rc == 0 && !stable && i < SCAN_ATTEMPTS; i++)
		rc = scan_once(m, opts, s, &cap, &stable, e);
	if (rc < 0) {
		maildir_scan_free(&s);
	} else {
		s->consistent = stable && maildir_stamp_trusted(&s->stamp);
		sort_and_mark(s);
	}
	*out = s;
	return rc;
}

void maildir_scan_keep(struct maildir_scan *s,
		       bool (*keep)(const struct maildir_entry *en, void *ctx), void *ctx)
{
	size_t k = 0;
	for (size_t i = 0; i < s->n; i++) {
		if (keep(&s->v[i], ctx))
			s->v[k++] = s->v[i];
		else
			free(s->v[i].file);
	}
	s->n = k;
	/* Give the array's unused end back too: it was sized for the whole listing. */
	s->v = xrealloc(s->v, (k + 1) * sizeof(*s->v));
}

void maildir_scan_free(struct maildir_scan **ps)
{
	struct maildir_scan *s = *ps;
	if (!s)
		return;
	entries_clear(s);
	free(s->v);
	free(s);
	*ps = NULL;
}
