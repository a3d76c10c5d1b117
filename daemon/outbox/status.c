#include "outbox/status.h"

#include "core/buf.h"
#include "core/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATUS_DIR ".mailferry"

static const char *const names[] = { "queued", "committed", "filing", "failed" };

const char *outbox_state_name(enum outbox_state s)
{
	return names[s];
}

static char *status_path(const char *dir, const char *base)
{
	return xasprintf("%s/" STATUS_DIR "/%s", dir, base);
}

int outbox_status_read(const char *dir, const char *base, struct outbox_status *st,
		       struct err *e)
{
	*st = (struct outbox_status){ .state = OUTBOX_QUEUED };
	char *path = status_path(dir, base);
	FILE *f = fopen(path, "r");
	if (!f) {
		int rc = errno == ENOENT ? 0 : err_set(e, -errno, ERR_LOCAL, "%s: %s", path,
							  strerror(errno));
		free(path);
		return rc;
	}
	char line[1200];
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		char *v = strchr(line, '=');
		if (!v)
			continue;
		*v++ = '\0';
		if (strcmp(line, "state") == 0) {
			for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
				if (strcmp(v, names[i]) == 0)
					st->state = (enum outbox_state)i;
		} else if (strcmp(line, "attempts") == 0) {
			st->attempts = (unsigned)strtoul(v, NULL, 10);
		} else if (strcmp(line, "next_try") == 0) {
			st->next_try = strtoll(v, NULL, 10);
		} else if (strcmp(line, "sent_base") == 0) {
			snprintf(st->sent_base, sizeof(st->sent_base), "%s", v);
		} else if (strcmp(line, "reply") == 0) {
			snprintf(st->reply, sizeof(st->reply), "%s", v);
		}
	}
	fclose(f);
	free(path);
	return 0;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = fsync(fd) == 0 ? 0 : -errno;
	close(fd);
	return rc;
}

int outbox_status_write(const char *dir, const char *base, const struct outbox_status *st,
			struct err *e)
{
	char *sdir = xasprintf("%s/" STATUS_DIR, dir);
	char *path = status_path(dir, base);
	char *tmp = xasprintf("%s.tmp", path);
	struct buf b = { 0 };
	/* One line each; the reply is flattened so it stays one. */
	buf_printf(&b, "state=%s\nattempts=%u\nnext_try=%lld\nsent_base=%s\nreply=",
		   names[st->state], st->attempts, (long long)st->next_try, st->sent_base);
	for (const char *r = st->reply; *r; r++)
		buf_putc(&b, *r == '\n' || *r == '\r' ? ' ' : *r);
	buf_putc(&b, '\n');
	int rc = 0, fd = -1;
	if (mkdir(sdir, 0700) < 0 && errno != EEXIST)
		rc = -errno;
	if (rc == 0 && (fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
		rc = -errno;
	errno = 0;
	if (rc == 0 && (write(fd, b.data, b.len) != (ssize_t)b.len || fsync(fd) < 0))
		rc = errno ? -errno : -EIO;
	if (fd >= 0 && close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc == 0)
		rc = fsync_dir(sdir);
	if (rc < 0) {
		unlink(tmp);
		err_set(e, rc, ERR_LOCAL, "%s: cannot record the outbox state: %s", path,
			strerror(-rc));
	}
	buf_free(&b);
	free(tmp);
	free(path);
	free(sdir);
	return rc;
}

int outbox_status_remove(const char *dir, const char *base, struct err *e)
{
	char *path = status_path(dir, base);
	int rc = unlink(path) == 0 || errno == ENOENT ? 0 : -errno;
	if (rc < 0)
		err_set(e, rc, ERR_LOCAL, "%s: %s", path, strerror(-rc));
	free(path);
	return rc;
}
