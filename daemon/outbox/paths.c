#include "outbox/paths.h"

#include "core/buf.h"
#include "core/xalloc.h"
#include "maildir/path.h"

#include <string.h>

static char *folder_path(const struct account_conf *a, const char *name)
{
	struct buf rel = { 0 };
	struct err e;
	/* config/ allows only names that map; '/' is the hierarchy separator. */
	if (maildir_path_from_server(&rel, (enum maildir_layout)a->layout, name, strlen(name), '/',
				     &e) < 0)
		buf_puts(&rel, name);
	char *path = xasprintf("%s%s%s", a->maildir, rel.len ? "/" : "", buf_str(&rel));
	buf_free(&rel);
	return path;
}

char *outbox_dir(const struct account_conf *a)
{
	return folder_path(a, a->smtp->outbox);
}

char *outbox_sent_dir(const struct account_conf *a)
{
	return a->smtp->sent[0] ? folder_path(a, a->smtp->sent) : NULL;
}
