#include "outbox/list.h"

#include "core/xalloc.h"
#include "maildir/folder.h"
#include "maildir/scan.h"
#include "outbox/message.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void read_header(const char *dir, struct outbox_entry *en)
{
	char *path = xasprintf("%s/%s/%s", dir, en->in_new ? "new" : "cur", en->file);
	struct outbox_msg *m = NULL;
	struct err e;
	if (outbox_msg_open(path, &m, &e) < 0) {
		en->problem = xstrdup(e.msg);
		en->from = xstrdup("");
		en->subject = xstrdup("");
		free(path);
		return;
	}
	const struct addr_list *to = outbox_msg_rcpts(m);
	for (size_t i = 0; i < to->n; i++)
		addr_add(&en->rcpts, to->v[i]);
	en->from = xstrdup(outbox_msg_from(m));
	en->subject = xstrdup(outbox_msg_subject(m));
	outbox_msg_free(&m);
	free(path);
}

int outbox_list_read(const char *dir, unsigned flags, struct outbox_entry **v, size_t *n,
		     struct err *e)
{
	struct maildir *m = NULL;
	struct maildir_scan *scan = NULL;
	*v = NULL;
	*n = 0;
	if (access(dir, F_OK) < 0 && errno == ENOENT)
		return 0;
	int rc = maildir_open(&m, dir, "outbox", e);
	if (rc == 0)
		rc = maildir_scan(m, 0, &scan, e);
	if (rc == 0)
		*v = xcalloc(scan->n + 1, sizeof(**v));
	for (size_t i = 0; rc == 0 && i < scan->n; i++) {
		const struct maildir_entry *f = &scan->v[i];
		struct outbox_entry *en = &(*v)[(*n)++];
		*en = (struct outbox_entry){ .id = xstrdup(f->base), .file = xstrdup(f->file),
					     .in_new = f->in_new };
		rc = outbox_status_read(dir, en->id, &en->st, e);
		if (rc == 0 && (flags & OUTBOX_LIST_HEADERS))
			read_header(dir, en);
	}
	maildir_scan_free(&scan);
	maildir_free(&m);
	if (rc < 0)
		outbox_list_free(v, *n), *n = 0;
	return rc;
}

void outbox_list_free(struct outbox_entry **v, size_t n)
{
	for (size_t i = 0; *v && i < n; i++) {
		struct outbox_entry *en = &(*v)[i];
		free(en->id);
		free(en->file);
		free(en->from);
		addr_list_free(&en->rcpts);
		free(en->subject);
		free(en->problem);
	}
	xfree(v);
}

const char *outbox_entry_state(const struct outbox_entry *en, const char *sending)
{
	if (sending && strcmp(en->id, sending) == 0)
		return "sending";
	switch (en->st.state) {
	case OUTBOX_QUEUED:
		return "queued";
	case OUTBOX_FILING:
		return "sending";
	default:
		return "failed";
	}
}

int outbox_list_find(const struct outbox_entry *v, size_t n, const char *id)
{
	int found = -ENOENT;
	size_t len = strlen(id);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(v[i].id, id) == 0)
			return (int)i;
		if (len && strncmp(v[i].id, id, len) == 0)
			found = found == -ENOENT ? (int)i : -EEXIST;
	}
	return found;
}

int outbox_entry_requeue(const char *dir, const struct outbox_entry *en, struct err *e)
{
	return outbox_status_remove(dir, en->id, e);
}

int outbox_entry_drop(const char *dir, const struct outbox_entry *en, struct err *e)
{
	char *path = xasprintf("%s/%s/%s", dir, en->in_new ? "new" : "cur", en->file);
	int rc = unlink(path) == 0 || errno == ENOENT ? 0 : -errno;
	if (rc < 0)
		err_set(e, rc, ERR_LOCAL, "%s: %s", path, strerror(-rc));
	else
		rc = outbox_status_remove(dir, en->id, e);
	free(path);
	return rc;
}
