#include "maildir/tree.h"

#include "core/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct walk {
	struct maildir_tree *t;
	enum maildir_layout layout;
	char delim;
};

static bool is_subdir(int dirfd, const char *name)
{
	struct stat st;
	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

static bool is_maildir(int fd)
{
	return is_subdir(fd, "new") && is_subdir(fd, "cur");
}

static struct maildir_tree_entry *add(struct maildir_tree *t, const char *rel)
{
	t->v = xgrow(t->v, &t->cap, t->n + 1, sizeof(*t->v));
	struct maildir_tree_entry *en = &t->v[t->n++];
	memset(en, 0, sizeof(*en));
	en->rel = xstrdup(rel);
	return en;
}

static void add_folder(struct walk *w, const char *rel)
{
	struct maildir_tree_entry *en = add(w->t, rel);
	struct buf name = { 0 };
	struct err e;
	if (maildir_path_to_server(&name, w->layout, rel, w->delim, &e) == 0) {
		en->name_len = name.len;
		en->name = buf_steal(&name);
		if (!en->name)
			en->name = xstrdup("");
	} else {
		en->why = xstrdup(e.msg);
	}
	buf_free(&name);
}

static void add_problem(struct walk *w, const char *rel, const char *why)
{
	add(w->t, rel)->why = xstrdup(why);
}

/* Whether entry de of dirfd is a directory, without following links. */
static bool entry_is_dir(int dirfd, const struct dirent *de)
{
	if (de->d_type != DT_UNKNOWN)
		return de->d_type == DT_DIR;
	return is_subdir(dirfd, de->d_name);
}

/* Opens a directory; errno says why on NULL. */
static DIR *open_dir(int parent, const char *name, bool follow)
{
	int fd =
	    openat(parent, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW));
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d && fd >= 0) {
		int saved = errno;
		close(fd);
		errno = saved;
	}
	return d;
}

static bool skipped_name(const char *name)
{
	return name[0] == '.' || strcmp(name, "new") == 0 || strcmp(name, "cur") == 0 ||
	       strcmp(name, "tmp") == 0;
}

/* Lists the verbatim folders below directory d, whose path is rel. */
static void walk_verbatim(struct walk *w, DIR *d, const char *rel, int depth)
{
	struct dirent *de;
	while ((de = readdir(d))) {
		if (skipped_name(de->d_name) || !entry_is_dir(dirfd(d), de))
			continue;
		char *sub = rel[0] ? xasprintf("%s/%s", rel, de->d_name) : xstrdup(de->d_name);
		DIR *sd = open_dir(dirfd(d), de->d_name, false);
		if (!sd) {
			add_problem(w, sub, strerror(errno));
		} else if (depth >= MAILDIR_TREE_DEPTH_MAX || strlen(sub) > MAILDIR_REL_MAX) {
			add_problem(w, sub, "folder nested too deep");
		} else {
			if (is_maildir(dirfd(sd)))
				add_folder(w, sub);
			walk_verbatim(w, sd, sub, depth + 1);
		}
		if (sd)
			closedir(sd);
		free(sub);
	}
}

static void list_plusplus(struct walk *w, DIR *d)
{
	if (is_maildir(dirfd(d)))
		add_folder(w, "");
	struct dirent *de;
	while ((de = readdir(d))) {
		const char *n = de->d_name;
		if (n[0] != '.' || strcmp(n, ".") == 0 || strcmp(n, "..") == 0 ||
		    !entry_is_dir(dirfd(d), de))
			continue;
		DIR *sd = open_dir(dirfd(d), n, false);
		if (!sd)
			add_problem(w, n, strerror(errno));
		else if (is_maildir(dirfd(sd)))
			add_folder(w, n);
		if (sd)
			closedir(sd);
	}
}

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct maildir_tree_entry *)a)->rel,
		      ((const struct maildir_tree_entry *)b)->rel);
}

int maildir_tree_list(struct maildir_tree *t, const char *root, enum maildir_layout layout,
		      char delim, struct err *e)
{
	maildir_tree_free(t);
	DIR *d = open_dir(AT_FDCWD, root, true); /* the root itself may well be a link */
	if (!d) {
		int rc = -errno;
		return err_set(e, rc, ERR_LOCAL, "%s: cannot read the Maildir root: %s", root,
			       strerror(-rc));
	}
	struct walk w = { t, layout, delim };
	if (layout == MAILDIR_LAYOUT_VERBATIM)
		walk_verbatim(&w, d, "", 0);
	else
		list_plusplus(&w, d);
	closedir(d);
	if (t->n)
		qsort(t->v, t->n, sizeof(*t->v), entry_cmp);
	return 0;
}

void maildir_tree_free(struct maildir_tree *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->v[i].rel);
		free(t->v[i].name);
		free(t->v[i].why);
	}
	free(t->v);
	memset(t, 0, sizeof(*t));
}
