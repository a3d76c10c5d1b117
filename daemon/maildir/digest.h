/* What recognises a message that a reader copied or moved between folders:
 * its Message-ID and a hash of its body. neomutt rewrites the header when it
 * saves a message (drops Status and X-Status, adds Content-Length, leaves
 * CRLF messages with mixed line ends), so the file's bytes change; these two
 * do not:
 *   - message_id: the value of the first Message-ID header field (name
 *     compared case-insensitively), unfolded, with leading and trailing
 *     white space removed, case preserved; at most MAILDIR_MSGID_MAX bytes
 *     (cut beyond, the same way for every copy);
 *   - body_hash: SHA-256 of the body, the bytes after the first empty line
 *     (an empty body when there is none), with every CRLF taken as LF and
 *     trailing white space (space, tab, CR, LF) at the very end ignored.
 * Computed streaming in bounded memory (a few KiB whatever the message size),
 * so it can run on a download as it arrives as well as on a file.
 * Depends on core and OpenSSL's EVP (libcrypto) only. */
#ifndef MF_MAILDIR_DIGEST_H
#define MF_MAILDIR_DIGEST_H

#include <stddef.h>

#define MAILDIR_MSGID_MAX 998
#define MAILDIR_HASH_LEN 32

struct maildir_ident {
	char message_id[MAILDIR_MSGID_MAX + 1]; /* "" when the message has none */
	unsigned char body_hash[MAILDIR_HASH_LEN];
};

struct maildir_digest;

struct maildir_digest *maildir_digest_new(void);

/* Takes the next len bytes of the message, in pieces of any size. */
void maildir_digest_feed(struct maildir_digest *d, const void *p, size_t len);

/* Ends the message and fills *out; d then takes nothing more (BUG) but must
 * still be freed. */
void maildir_digest_end(struct maildir_digest *d, struct maildir_ident *out);

/* Frees *d and sets it to NULL (NULL-safe). */
void maildir_digest_free(struct maildir_digest **d);

/* Writes the body hash as 64 lower-case hex digits and a NUL. */
void maildir_ident_hash_hex(const struct maildir_ident *id, char out[2 * MAILDIR_HASH_LEN + 1]);

#endif
