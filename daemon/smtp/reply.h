/* SMTP replies (RFC 5321 section 4.2): "250-first line", "250 last line",
 * parsed incrementally from bytes at any chunk boundary. A reply is its code
 * and its lines' text joined by newlines; the enhanced status code (RFC 3463,
 * "5.1.1") stays in the text. Bounded: a line of at most SMTP_LINE_MAX
 * bytes, a reply of at most SMTP_REPLY_MAX. Pure C. */
#ifndef MF_SMTP_REPLY_H
#define MF_SMTP_REPLY_H

#include "core/buf.h"

#include <stdbool.h>
#include <stddef.h>

#define SMTP_LINE_MAX 4096
#define SMTP_REPLY_MAX 65536

enum smtp_parse { SMTP_MORE, SMTP_DONE, SMTP_BAD };

struct smtp_reply {
	int code;	/* 200..599 */
	struct buf text; /* the lines' texts, joined by '\n' */
	/* private */
	struct buf line;
	bool started;
	const char *why; /* SMTP_BAD: what was wrong */
};

/* Takes bytes; *used tells how many were consumed. SMTP_DONE: a reply is
 * complete in r (take code and text, then smtp_reply_reset); the bytes after
 * *used belong to the next one. */
enum smtp_parse smtp_reply_feed(struct smtp_reply *r, const char *p, size_t n, size_t *used);
void smtp_reply_reset(struct smtp_reply *r);
void smtp_reply_free(struct smtp_reply *r);
/* 2xx, 3xx: on; 4xx: try again later; 5xx: no. */
static inline bool smtp_positive(int code)
{
	return code >= 200 && code < 400;
}
static inline bool smtp_transient(int code)
{
	return code >= 400 && code < 500;
}

#endif
