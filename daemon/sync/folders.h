/* Which folder pairs an account has: the server's folders (LIST), the ones
 * the state knows, and the Maildir tree, matched up. Decides, without doing
 * anything, what becomes of each: synced (its Maildir created when missing,
 * per create_folders), created on the server first (a folder made locally),
 * skipped, or known but gone from one side (removed from the other only per
 * remove_folders). Pure apart from reading its arguments. */
#ifndef MF_SYNC_FOLDERS_H
#define MF_SYNC_FOLDERS_H

#include "config/config.h"
#include "imap/list.h"
#include "maildir/tree.h"
#include "state/state.h"

enum folder_fate {
	FATE_SYNC,	    /* on the server; synced */
	FATE_CREATE_REMOTE, /* only in the Maildir, new: create on the server, then sync */
	FATE_SKIP,	    /* not synced; why says so */
	FATE_GONE_REMOTE,   /* known, no longer on the server */
	FATE_GONE_LOCAL,    /* known, its Maildir is gone */
};

struct folder_entry {
	char *name; /* server name, UTF-8 */
	char *rel;  /* Maildir path relative to the account root */
	unsigned attrs;
	struct imap_folder_status status; /* from LIST-STATUS, when known */
	const struct state_folder *known; /* its state row, or NULL */
	bool local_exists;
	enum folder_fate fate;
	char *why; /* for SKIP and GONE: a sentence for the log */
};

struct folder_set {
	struct folder_entry *v;
	size_t n, cap;
	char delim; /* the server's hierarchy delimiter (0: flat) */
};

/* Fills set. known: the state's folders; tree: the Maildir folders. */
void folders_plan(const struct account_conf *a, const struct imap_folder_list *server,
		  const struct state_folder *known, size_t nknown, const struct maildir_tree *tree,
		  struct folder_set *set);
/* The delimiter the tree must be listed with (from the server's LIST). */
char folders_delimiter(const struct imap_folder_list *server);
/* The server name of the folder with this special-use attribute, or NULL. */
const char *folders_special(const struct folder_set *set, unsigned attr);
void folders_free(struct folder_set *set);

#endif
