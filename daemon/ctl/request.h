/* The control protocol's request, shared by mailferryd and mailferryctl.
 *
 * A request is the words of a mailferryctl command line, each ended by a NUL
 * byte, after the magic word and before an empty word:
 *     "mailferry/1\0" "sync\0" "work\0" "Lists/rust\0" "--wait\0" "\0"
 * so any folder name (spaces, quotes, UTF-8) travels as it is. The answer is
 * a line with the exit status ("0\n", "1\n", "2\n"), then text (a table, or
 * JSON with --json) until the daemon closes the connection.
 * Parsing is incremental and bounded: a request holds at most
 * CTL_MAX_WORDS words and CTL_MAX_BYTES bytes. Pure C. */
#ifndef MF_CTL_REQUEST_H
#define MF_CTL_REQUEST_H

#include "core/buf.h"

#include <stdbool.h>
#include <stddef.h>

#define CTL_MAGIC "mailferry/1"
#define CTL_MAX_WORDS 64
#define CTL_MAX_BYTES 65536

enum ctl_parse { CTL_MORE, CTL_DONE, CTL_BAD };

struct ctl_request {
	char *words[CTL_MAX_WORDS + 1]; /* NULL-terminated; point into buf */
	size_t nwords;
	struct buf buf; /* the bytes received */
	size_t scanned; /* how far buf has been split into words */
	bool magic_seen;
	const char *why; /* for CTL_BAD: what was wrong */
};

/* Takes the next bytes of a request. CTL_DONE once the empty word ended it
 * (bytes after it are an error); CTL_BAD on a wrong magic word, too many
 * words or bytes. */
enum ctl_parse ctl_request_feed(struct ctl_request *r, const char *p, size_t n);
void ctl_request_free(struct ctl_request *r);
/* Appends the encoding of argv[0..argc) to b (what mailferryctl sends). */
void ctl_request_encode(struct buf *b, int argc, char *const *argv);

#endif
