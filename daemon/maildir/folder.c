#include "maildir/folder.h"

#include "core/log.h"
#include "core/xalloc.h"
#include "maildir/internal.h"
#include "maildir/name.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const sub_names[] = { "tmp", "new", "cur" };

const char *maildir_sub_name(enum maildir_sub sub)
{
	return sub_names[sub];
}

int maildir_fs_error(struct err *e, int rc, const char *label, const char *what_fmt, ...)
{
	char what[256];
	va_list ap;
	va_start(ap, what_fmt);
	vsnprintf(what, sizeof(what), what_fmt, ap);
	va_end(ap);
	const char *gloss = rc == -ENOSPC ? "disk full" : rc == -EDQUOT ? "over quota" : NULL;
	if (gloss)
		return err_set(e, rc, ERR_LOCAL, "%s: %s (%s) while %s", label, gloss,
			       strerror(-rc), what);
	return err_set(e, rc, ERR_LOCAL, "%s: %s while %s", label, strerror(-rc), what);
}

static int fsync_dir_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = fsync(fd) ? -errno : 0;
	close(fd);
	return rc;
}

static int check_dir(const char *path, struct err *e)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return maildir_fs_error(e, -errno, path, "creating a folder");
	if (!S_ISDIR(st.st_mode))
		return maildir_fs_error(e, -ENOTDIR, path, "creating a folder");
	return 0;
}

/* fsyncs the directory holding path's last component. */
static int fsync_parent(char *path)
{
	char *slash = strrchr(path, '/');
	if (!slash)
		return fsync_dir_path(".");
	if (slash == path)
		return fsync_dir_path("/");
	*slash = '\0';
	int rc = fsync_dir_path(path);
	*slash = '/';
	return rc;
}

/* Creates directory path (and its missing parents); fsyncs the parent of each
 * one created. path is modified temporarily. */
static int make_dir(char *path, struct err *e)
{
	int rc = mkdir(path, 0700) == 0 ? 0 : -errno;
	char *slash = strrchr(path, '/');
	if (rc == -ENOENT && slash && slash != path) {
		*slash = '\0';
		rc = make_dir(path, e);
		*slash = '/';
		if (rc < 0)
			return rc;
		rc = mkdir(path, 0700) == 0 ? 0 : -errno;
	}
	if (rc == -EEXIST)
		return check_dir(path, e);
	if (rc < 0)
		return maildir_fs_error(e, rc, path, "creating a folder");
	rc = fsync_parent(path);
	return rc < 0 ? maildir_fs_error(e, rc, path, "making a new folder durable") : 0;
}

int maildir_ensure(const char *path, struct err *e)
{
	char *p = xstrdup(path);
	size_t n = strlen(p);
	while (n > 1 && p[n - 1] == '/')
		p[--n] = '\0';
	int rc = n ? 0 : err_set(e, -EINVAL, ERR_LOCAL, "empty Maildir path");
	if (rc == 0)
		rc = make_dir(p, e);
	bool created = false;
	for (int i = 0; rc == 0 && i < 3; i++) {
		char *sub = xasprintf("%s/%s", p, sub_names[i]);
		if (mkdir(sub, 0700) == 0)
			created = true;
		else if (errno == EEXIST)
			rc = check_dir(sub, e);
		else
			rc = maildir_fs_error(e, -errno, p, "creating %s/", sub_names[i]);
		free(sub);
	}
	if (rc == 0 && created && (rc = fsync_dir_path(p)) < 0)
		maildir_fs_error(e, rc, p, "making a new folder durable");
	free(p);
	return rc;
}

int maildir_open(struct maildir **out, const char *path, const char *label, struct err *e)
{
	int root = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return maildir_fs_error(e, -errno, label, "opening %s", path);
	struct maildir *m = xcalloc(1, sizeof(*m));
	m->path = xstrdup(path);
	m->label = xstrdup(label);
	int rc = 0;
	for (int i = 0; i < 3; i++)
		m->fd[i] = -1;
	for (int i = 0; i < 3 && rc == 0; i++) {
		m->fd[i] = openat(root, sub_names[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (m->fd[i] < 0 && errno == ENOENT)
			rc = err_set(e, -ENOENT, ERR_LOCAL, "%s: %s is not a Maildir (no %s/)",
				     label, path, sub_names[i]);
		else if (m->fd[i] < 0)
			rc =
			    maildir_fs_error(e, -errno, label, "opening %s/%s", path, sub_names[i]);
	}
	close(root);
	if (rc < 0)
		maildir_free(&m);
	*out = m;
	return rc;
}

void maildir_free(struct maildir **pm)
{
	struct maildir *m = *pm;
	if (!m)
		return;
	struct err e;
	if (m->dirty && maildir_flush(m, &e) < 0)
		log_warn("%s", e.msg);
	for (int i = 0; i < 3; i++)
		if (m->fd[i] >= 0)
			close(m->fd[i]);
	free(m->path);
	free(m->label);
	free(m);
	*pm = NULL;
}

const char *maildir_path(const struct maildir *m)
{
	return m->path;
}

const char *maildir_label(const struct maildir *m)
{
	return m->label;
}

int maildir_sync_sub(struct maildir *m, enum maildir_sub sub)
{
	if (fsync(m->fd[sub]) != 0)
		return -errno;
	m->dirty &= ~(1u << sub);
	return 0;
}

int maildir_flush(struct maildir *m, struct err *e)
{
	for (int i = 0; i < 3; i++) {
		if (!(m->dirty & (1u << i)))
			continue;
		int rc = maildir_sync_sub(m, (enum maildir_sub)i);
		if (rc < 0)
			return maildir_fs_error(e, rc, m->label, "making changes in %s/ durable",
						sub_names[i]);
	}
	return 0;
}

int maildir_rename(int from_dir, const char *from, int to_dir, const char *to)
{
	if (renameat2(from_dir, from, to_dir, to, RENAME_NOREPLACE) == 0)
		return 0;
	/* File systems without RENAME_NOREPLACE (some network and FUSE ones):
	 * fall back to rename(2); names are unique, so nothing is replaced. */
	if (errno != EINVAL && errno != ENOSYS)
		return -errno;
	return renameat(from_dir, from, to_dir, to) == 0 ? 0 : -errno;
}

static time_t newest_time(const struct stat *st)
{
	time_t t = st->st_atim.tv_sec;
	if (st->st_mtim.tv_sec > t)
		t = st->st_mtim.tv_sec;
	if (st->st_ctim.tv_sec > t)
		t = st->st_ctim.tv_sec;
	return t;
}

/* A file of one of our deliveries whose process is gone: no one will finish
 * it. A pid that a live process took over since keeps the file until it is
 * old enough. */
static bool orphaned_delivery(const char *name)
{
	long pid;
	return maildir_name_ours(name, &pid) && pid > 0 && pid != (long)getpid() &&
	       kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

int maildir_clean_tmp(struct maildir *m, time_t max_age, size_t *removed, struct err *e)
{
	size_t count = 0;
	int fd = openat(m->fd[MAILDIR_TMP], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		int rc = maildir_fs_error(e, -errno, m->label, "reading tmp/");
		if (fd >= 0)
			close(fd);
		return rc;
	}
	time_t limit = time(NULL) - max_age;
	struct dirent *de;
	int rc = 0;
	while (rc == 0 && (de = readdir(d))) {
		struct stat st;
		if (fstatat(m->fd[MAILDIR_TMP], de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISREG(st.st_mode) ||
		    (newest_time(&st) >= limit && !orphaned_delivery(de->d_name)))
			continue;
		if (unlinkat(m->fd[MAILDIR_TMP], de->d_name, 0) == 0)
			count++;
		else if (errno != ENOENT)
			rc = maildir_fs_error(e, -errno, m->label, "removing tmp/%s", de->d_name);
	}
	closedir(d);
	if (removed)
		*removed = count;
	return rc;
}
