/* Where a server folder lives under the account's Maildir root, and back.
 *
 * Server names are UTF-8 (already decoded from modified UTF-7) with the
 * server's hierarchy delimiter; local paths are relative to the account root.
 * Two layouts (shared INTERFACE.md, "On disk"):
 *   verbatim   INBOX -> "INBOX", A/B -> "A/B": nested directories, each folder
 *              a Maildir that may also hold its subfolders' directories;
 *   maildir++  INBOX -> "" (the root itself), A/B -> ".A.B".
 *
 * A server name can never reach outside the root or onto a Maildir's own
 * directories. Within each name component these bytes are written "%XX"
 * (two upper-case hex digits), reversibly:
 *   - '%' itself (%25), bytes below 0x20, 0x7f, '/', and each byte of
 *     invalid UTF-8 (valid UTF-8 is written as it is);
 *   - verbatim: a leading '.' (%2E), so "." and ".." cannot appear and no
 *     folder hides among dot-directories such as .notmuch; the first letter
 *     of a component that is exactly "new", "cur" or "tmp" (%6Eew, %63ur,
 *     %74mp), which would otherwise be the parent folder's Maildir dirs;
 *   - maildir++: every '.', the separator of that layout.
 * An empty component (as in "A//B") is written as a lone "%".
 * The local form of a name is unique: the reverse mapping accepts exactly
 * the paths the forward mapping produces, so a folder created locally maps to
 * one server name, and that name maps back to the same directory.
 * Pure C: depends on core only. */
#ifndef MF_MAILDIR_PATH_H
#define MF_MAILDIR_PATH_H

#include "core/buf.h"
#include "core/err.h"

#include <stddef.h>

/* Same order as enum layout of config/config.h. */
enum maildir_layout { MAILDIR_LAYOUT_VERBATIM, MAILDIR_LAYOUT_PLUSPLUS };

/* The longest relative path the mapping produces; a component (and the whole
 * directory name in maildir++) is at most 255 bytes (NAME_MAX). */
#define MAILDIR_REL_MAX 2048

/* Appends to out the path, relative to the account root, of the Maildir of
 * the server folder name[0..len) (which may hold NUL bytes: they are escaped).
 * delim is the server's hierarchy delimiter, 0 for a flat namespace (NIL);
 * INBOX is recognised case-insensitively, as IMAP does. The result never
 * starts with '/', never has an empty, "." or ".." component, and in verbatim
 * layout never has a "new", "cur" or "tmp" component. Returns 0, or (out left
 * as it was, e says why; the message does not quote the name) -EINVAL for an
 * empty name, -ENAMETOOLONG for a component or path that would be too long. */
int maildir_path_from_server(struct buf *out, enum maildir_layout layout, const char *name,
			     size_t len, char delim, struct err *e);

/* Appends to out the server name of the Maildir at rel (relative to the root,
 * "" for the root itself), the reverse of maildir_path_from_server. Returns 0,
 * or -EINVAL (out left as it was, e says why) when no server name maps to rel:
 * it is not in the form the forward mapping writes (a stray or lower-case
 * "%" escape, a raw control character, "inbox" for INBOX, a maildir++ name
 * without its leading '.'), a component holds the delimiter, or it is nested
 * while the server has no hierarchy (delim 0). A returned name can hold NUL
 * bytes (from "%00"): the length is out->len minus what out held before. */
int maildir_path_to_server(struct buf *out, enum maildir_layout layout, const char *rel, char delim,
			   struct err *e);

/* The local name the account option special_use_names gives a folder with
 * the SPECIAL-USE attribute attr (RFC 6154), compared case-insensitively:
 * \Sent -> "Sent", \Drafts -> "Drafts", \Junk -> "Junk", \Trash -> "Trash",
 * \Archive -> "Archive"; NULL for any other attribute. With the option on,
 * the caller maps that folder with maildir_path_from_server(out, layout,
 * name, strlen(name), 0, e) instead of its server name, and remembers the pair
 * itself: the reverse mapping of "Sent" gives "Sent", not the server's name.
 * Two server folders mapping to one path (a \Sent folder and a folder really
 * named Sent) are the caller's to detect. */
const char *maildir_special_use_name(const char *attr);

#endif
