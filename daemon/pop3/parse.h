/* The incremental POP3 response parser (server to client): status lines
 * (RFC 1939 "+OK" / "-ERR", with RFC 2449 extended response codes such as
 * "[IN-USE]" or "[SYS/TEMP]"), SASL continuations (RFC 5034 "+ "), and
 * multi-line responses ended by a lone "." line.
 *
 * POP3 has no tags and no length prefixes: only the client knows whether a
 * "+OK" opens a multi-line response (CAPA, UIDL, LIST, RETR do; STAT, DELE
 * do not). So the reader yields the status line, and the client, before it
 * feeds another byte, says with pop3_reader_multi that a multi-line block
 * follows: either as lines (listings: CAPA, UIDL, LIST), or streamed to a
 * sink (a message: RETR), dot-unstuffed and with every line end written as
 * LF, the way Maildir readers expect. A message never sits in memory whole.
 * Every line kept in memory is bounded (max_line) and so is every multi-line
 * block (its byte budget): an endless response is an error, not a growing
 * buffer.
 * Pure C: depends on core only (no libuv, no OpenSSL). */
#ifndef MF_POP3_PARSE_H
#define MF_POP3_PARSE_H

#include "core/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum pop3_res { POP3_DONE, POP3_MORE, POP3_FAIL };

enum pop3_kind {
	POP3_OK,   /* "+OK [CODE] text" */
	POP3_ERR,  /* "-ERR [CODE] text" */
	POP3_CONT, /* "+ challenge": the server waits for a SASL response */
	POP3_LINE, /* one line of a multi-line block read as lines, unstuffed */
	POP3_END,  /* the "." that ends a multi-line block */
};

/* One item the reader produced. The pointers stay valid until the next
 * pop3_reader_feed, pop3_reader_multi or pop3_reader_reset. */
struct pop3_item {
	enum pop3_kind kind;
	const char *code; /* OK and ERR: the response code without brackets
			   * ("SYS/TEMP"), "" when the line has none */
	const char *text; /* OK, ERR: the text after the code; CONT: the
			   * challenge; LINE: the line. NUL-terminated (no NUL
			   * inside: such a line is malformed) */
	size_t len;       /* strlen(text) */
};

/* Where a streamed block goes: write gets the unstuffed bytes with LF line
 * ends, in chunks of any size (never empty). A negative errno with e set
 * fails the parse. */
struct pop3_sink {
	int (*write)(void *ctx, const char *p, size_t n, struct err *e);
	void *ctx;
};

/* The longest status or listing line accepted, line end included. RFC 2449
 * allows 512 octets; real servers write longer IMPLEMENTATION lines. */
#define POP3_MAX_LINE 4096

struct pop3_reader;

struct pop3_reader *pop3_reader_new(void);
/* NULL-safe, clears *r. */
void pop3_reader_free(struct pop3_reader **r);

/* Right after a POP3_OK item, before feeding more bytes: the rest is a
 * multi-line block of at most max_bytes bytes on the wire (its terminating
 * line included). sink NULL: the block comes as POP3_LINE items; else its
 * bytes go to sink (copied) and only POP3_END comes. */
void pop3_reader_multi(struct pop3_reader *r, const struct pop3_sink *sink, uint64_t max_bytes);

/* Consumes up to len bytes of p; *used tells how many.
 * POP3_DONE: *item holds the next item; the bytes after *used are not read
 * yet: feed them again.
 * POP3_MORE: all len bytes were consumed and no item is complete.
 * POP3_FAIL: malformed input, a limit, or a failed sink write;
 * pop3_reader_err says which. The reader then refuses all input until
 * pop3_reader_reset. Never blocks; memory stays within the limits. */
enum pop3_res pop3_reader_feed(struct pop3_reader *r, const char *p, size_t len, size_t *used,
			       struct pop3_item *item);

/* Why the last feed failed: class ERR_PERM for what the server sent (with
 * the start of the offending line, control characters escaped), or the
 * sink's error. */
const struct err *pop3_reader_err(const struct pop3_reader *r);

/* Forgets any partial line or block and the error: the next byte starts a
 * status line, as on a new connection. */
void pop3_reader_reset(struct pop3_reader *r);

/* Listing lines. Each returns 0, or -EPROTO when the line is not of its form.
 * "count size" (the text of STAT's +OK; trailing text allowed): */
int pop3_parse_stat(const char *text, uint32_t *count, uint64_t *size);
/* "msg size" (a LIST line; trailing text allowed): */
int pop3_parse_list(const char *line, uint32_t *msg, uint64_t *size);
/* "msg unique-id" (a UIDL line). The unique-id is 1 to 70 characters in
 * 0x21..0x7e (RFC 1939 section 7); *uid points into line, *uid_len long. */
int pop3_parse_uidl(const char *line, uint32_t *msg, const char **uid, size_t *uid_len);

#endif
