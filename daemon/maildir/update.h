/* Changing messages that are already in a Maildir: the rename a flag change
 * needs, and removal. Readers rename and remove the same files at any time,
 * so a file that is no longer under the name the caller knows is an expected
 * outcome (-ENOENT: rescan the folder), never a crash or a guess.
 * Neither call is durable by itself: maildir_flush(m) makes all of them
 * durable at once, and must return before the change is recorded in the sync
 * state. Pure C + POSIX: depends on core only. */
#ifndef MF_MAILDIR_UPDATE_H
#define MF_MAILDIR_UPDATE_H

#include "core/err.h"
#include "maildir/folder.h"

#include <stdbool.h>

/* Gives the message file in new/ (in_new) or cur/ of m exactly flags (enum
 * msg_flag; the whole set, not a change), moving it between new/ and cur/ as
 * \Seen asks (see maildir_flags_in_new) and keeping its unknown letters.
 * *new_file (owned by the caller, free) and *new_in_new get where it is now,
 * also when nothing had to change. Returns 0; -ENOENT when file is gone from
 * there (a reader renamed or removed it meanwhile: rescan); -EEXIST when the
 * target name exists already (the same message twice: rescan); -EINVAL when
 * file is not a message name; another negative errno. */
int maildir_set_flags(struct maildir *m, bool in_new, const char *file, unsigned flags,
		      char **new_file, bool *new_in_new, struct err *e);

/* Removes the message file in new/ (in_new) or cur/ of m. Returns 0, -ENOENT
 * when it is gone from there (renamed or removed meanwhile: rescan), -EINVAL
 * when file is not a message name, or another negative errno. */
int maildir_remove(struct maildir *m, bool in_new, const char *file, struct err *e);

#endif
