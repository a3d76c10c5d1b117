/* Reading a message file for an upload, streaming: its size, its date, what
 * recognises it (maildir/digest.h), and its bytes in pieces, raw or with
 * every bare LF written as CRLF (what an IMAP APPEND literal carries). The
 * size of the converted form is known before the first byte is sent, as a
 * literal's length must be. Bounded memory whatever the message size.
 * Pure C + POSIX and maildir/digest: depends on core and libcrypto only. */
#ifndef MF_MAILDIR_MSGFILE_H
#define MF_MAILDIR_MSGFILE_H

#include "core/err.h"
#include "maildir/digest.h"
#include "maildir/folder.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

struct maildir_msg;

/* Opens the message file in new/ (in_new) or cur/ of m (borrowed: it must
 * outlive *out). Returns 0, -ENOENT when it is gone from there (a reader
 * renamed or removed it: rescan), -EINVAL when file is not a message name,
 * or another negative errno. */
int maildir_msg_open(struct maildir_msg **out, struct maildir *m, bool in_new, const char *file,
		     struct err *e);

/* Frees *r, closing the file, and sets *r to NULL (NULL-safe). */
void maildir_msg_free(struct maildir_msg **r);

/* The file's size in bytes and modification time (the message's date to
 * give APPEND), as they were at open. */
uint64_t maildir_msg_size(const struct maildir_msg *r);
struct timespec maildir_msg_mtime(const struct maildir_msg *r);

/* Reads the whole file once: fills *id (may be NULL) and *crlf_size (may be
 * NULL) with the size it has with every bare LF written as CRLF. Leaves the
 * reader at the start. Returns 0 or a negative errno (-EIO when the file is
 * not as long as it was at open). */
int maildir_msg_inspect(struct maildir_msg *r, struct maildir_ident *id, uint64_t *crlf_size,
			struct err *e);

/* Reads the next piece into buf[0..len): the raw bytes, or with crlf every
 * bare LF as CRLF (then len must be at least 2, and maildir_msg_inspect must
 * have run). One pass gives exactly maildir_msg_size (raw) or *crlf_size
 * (crlf) bytes in all, never more, whatever happens to the file meanwhile;
 * one pass keeps one mode. Returns the number of bytes (0 at the end), or a
 * negative errno: -EIO when the file changed under it and the promised size
 * cannot be kept. */
ssize_t maildir_msg_read(struct maildir_msg *r, void *buf, size_t len, bool crlf, struct err *e);

/* Starts the next pass (say, to send the message again after a reconnect). */
void maildir_msg_rewind(struct maildir_msg *r);

#endif
