#include "maildir/update.h"

#include "core/xalloc.h"
#include "maildir/internal.h"
#include "maildir/name.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int maildir_set_flags(struct maildir *m, bool in_new, const char *file, unsigned flags,
		      char **new_file, bool *new_in_new, struct err *e)
{
	*new_file = NULL;
	struct maildir_name nm;
	if (maildir_name_parse(file, &nm) < 0)
		return err_set(e, -EINVAL, ERR_LOCAL, "%s: \"%s\" is not a message file name",
			       m->label, file);
	bool to_new = maildir_flags_in_new(flags);
	char *dst = maildir_name_build(nm.base, nm.base_len, flags, nm.unknown, to_new);
	enum maildir_sub from = maildir_sub_of(in_new), to = maildir_sub_of(to_new);
	bool change = from != to || strcmp(dst, file) != 0;
	int rc = change ? maildir_rename(m->fd[from], file, m->fd[to], dst) : 0;
	if (rc == -ENOENT) {
		err_set(e, rc, ERR_LOCAL, "%s: message %s/%s was renamed or removed meanwhile",
			m->label, maildir_sub_name(from), file);
	} else if (rc == -EEXIST) {
		err_set(e, rc, ERR_LOCAL, "%s: cannot rename %s/%s: %s/%s exists already", m->label,
			maildir_sub_name(from), file, maildir_sub_name(to), dst);
	} else if (rc < 0) {
		maildir_fs_error(e, rc, m->label, "renaming %s/%s", maildir_sub_name(from), file);
	} else {
		if (change)
			m->dirty |= 1u << from | 1u << to;
		*new_file = dst;
		*new_in_new = to_new;
		return 0;
	}
	free(dst);
	return rc;
}

int maildir_remove(struct maildir *m, bool in_new, const char *file, struct err *e)
{
	enum maildir_sub sub = maildir_sub_of(in_new);
	struct maildir_name nm;
	if (maildir_name_parse(file, &nm) < 0)
		return err_set(e, -EINVAL, ERR_LOCAL, "%s: \"%s\" is not a message file name",
			       m->label, file);
	if (unlinkat(m->fd[sub], file, 0) == 0) {
		m->dirty |= 1u << sub;
		return 0;
	}
	if (errno == ENOENT)
		return err_set(e, -ENOENT, ERR_LOCAL,
			       "%s: message %s/%s was renamed or removed meanwhile", m->label,
			       maildir_sub_name(sub), file);
	return maildir_fs_error(e, -errno, m->label, "removing %s/%s", maildir_sub_name(sub), file);
}
