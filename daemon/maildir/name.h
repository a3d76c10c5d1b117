/* Maildir file names: "BASE:2,INFO" per the Maildir convention, where BASE
 * is the message's unique name (constant for its whole life, the key the sync
 * engine joins on) and INFO its flag letters. Also accepted on read: a BASE
 * with no info, and "BASE;2,INFO" as written on file systems that cannot hold
 * ':'; we always write ':'. Pure C: depends on core only. */
#ifndef MF_MAILDIR_NAME_H
#define MF_MAILDIR_NAME_H

#include "maildir/flags.h"

#include <stdbool.h>
#include <stddef.h>

/* The longest unique name maildir_name_unique makes, NUL included. It leaves
 * room for ":2," and every possible letter within NAME_MAX (255). */
#define MAILDIR_UNIQUE_MAX 128

struct maildir_name {
	const char *base; /* borrowed: points into the parsed name, not NUL-terminated */
	size_t base_len;
	unsigned flags;
	char unknown[FLAGS_INFO_MAX]; /* letters we do not model, sorted, "" when none */
	bool has_info;                /* the name carries ":2," or ";2," */
};

/* Parses the file name of a message in new/ or cur/. The info starts at the
 * first ':' or ";2,", whichever comes first. Returns 0, or
 * -EINVAL for a name that is not a message: empty, longer than 255 bytes,
 * starting with '.', holding '/', an empty base, info other than "2,"
 * followed by graphic ASCII letters (the experimental ":1," included). */
int maildir_name_parse(const char *name, struct maildir_name *out);

/* Which directory a message with these flags belongs in: new/ unless it is
 * \Seen, the placement neomutt uses (it moves an unread message back to new/). */
bool maildir_flags_in_new(unsigned flags);

/* The file name of base[0..base_len) with flags and unknown letters (NULL for
 * none) for a file in new/ (in_new) or cur/: in new/ a message with no letters
 * has no info at all; otherwise ":2," and the sorted letters follow. Returns a
 * string the caller owns (free). */
char *maildir_name_build(const char *base, size_t base_len, unsigned flags, const char *unknown,
			 bool in_new);

/* Writes a new unique name "SECONDS.M<usec>P<pid>Q<counter>.<host>" to out.
 * The counter is per process and atomic, so names made in the same
 * microsecond (or from several threads) differ; the pid tells processes
 * apart. In the host name '/' is written \057 and ':' \072 as the convention
 * asks, and any other byte outside [A-Za-z0-9._-] in octal the same way; a
 * very long host name is cut to keep the whole under MAILDIR_UNIQUE_MAX. */
void maildir_name_unique(char out[MAILDIR_UNIQUE_MAX]);

/* Whether name was made by maildir_name_unique on this host; *pid is then
 * the process that made it. */
bool maildir_name_ours(const char *name, long *pid);

#endif
