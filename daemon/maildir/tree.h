/* The local folder tree of an account: every Maildir under the root, with
 * the server name it stands for (maildir/path.h), so that folders a user
 * creates locally can be created on the server. A directory is a folder when
 * it holds both new/ and cur/.
 *   verbatim:  the whole tree, depth first; names starting with '.' (such as
 *              .notmuch) and the Maildir dirs new/ cur/ tmp/ are not
 *              descended into; a directory that is not a Maildir is still
 *              searched for folders below it (a server folder that holds
 *              only subfolders).
 *   maildir++: the root itself (INBOX) and its '.'-named subdirectories.
 * Symbolic links are not followed, so a link loop cannot trap the walk; a
 * folder reached only through a link is not listed.
 * Blocking file system calls. Pure C + POSIX: depends on core only. */
#ifndef MF_MAILDIR_TREE_H
#define MF_MAILDIR_TREE_H

#include "core/err.h"
#include "maildir/path.h"

#include <stddef.h>

/* Deeper folders are listed with an error rather than walked. */
#define MAILDIR_TREE_DEPTH_MAX 64

struct maildir_tree_entry {
	char *rel;  /* owned: path relative to the root ("" for the root itself) */
	char *name; /* owned: the server name (it may hold NUL bytes: name_len);
		     * NULL when no server name maps to rel */
	size_t name_len;
	char *why; /* owned: why rel has no server name, NULL when name is set */
};

/* Start with `struct maildir_tree t = { 0 };`, release with maildir_tree_free. */
struct maildir_tree {
	struct maildir_tree_entry *v; /* owned; sorted by rel (strcmp) */
	size_t n, cap;
};

/* Replaces t's contents with the folders under root for layout and the
 * server's hierarchy delimiter delim (0 for none). A directory that cannot
 * be read below the root is listed with its reason in why. Returns 0, or a
 * negative errno (t then empty) when root itself cannot be read. */
int maildir_tree_list(struct maildir_tree *t, const char *root, enum maildir_layout layout,
		      char delim, struct err *e);

void maildir_tree_free(struct maildir_tree *t);

#endif
