/* Which server folders an account syncs: the `folders` patterns of the
 * config. "*" matches any run of characters, "%" any run without the
 * hierarchy delimiter (as in IMAP LIST); a leading "!" excludes. The last
 * pattern that matches a name decides, so [ "*", "!Lists/%", "Lists/rust" ]
 * takes everything but the lists, except one. INBOX matches case-blind.
 * Pure C. */
#ifndef MF_SYNC_PATTERN_H
#define MF_SYNC_PATTERN_H

#include <stdbool.h>

/* patterns: NULL-terminated; name in UTF-8; delim the server's delimiter (0
 * for none). */
bool pattern_selects(char *const *patterns, const char *name, char delim);

#endif
