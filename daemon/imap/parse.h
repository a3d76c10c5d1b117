/* The incremental IMAP response parser (server to client; RFC 3501 and
 * RFC 9051). It is fed bytes at any chunk boundary and yields one complete
 * response at a time as a value tree (imap/response.h). Literals can stream
 * to a sink set by the client, so message bodies never sit in memory whole;
 * everything else is bounded by explicit limits.
 * Pure C: depends on core only (no libuv, no OpenSSL). */
#ifndef MF_IMAP_PARSE_H
#define MF_IMAP_PARSE_H

#include "core/err.h"
#include "imap/response.h"

#include <stddef.h>
#include <stdint.h>

enum parse_res { PARSE_DONE, PARSE_MORE, PARSE_ERR };

/* What one response may cost. Exceeding any of them is PARSE_ERR. */
struct imap_limits {
	size_t max_line;           /* bytes of one line outside literals, CRLF included */
	size_t max_depth;          /* nested lists */
	size_t max_inline_literal; /* a literal kept in memory (not taken by a sink) */
	size_t max_values;         /* values in one response, lists included */
	size_t max_bytes;          /* memory one response holds: values, strings, literals */
};

/* Tight limits for an unauthenticated server (8 KiB lines) ... */
extern const struct imap_limits imap_limits_before_login;
/* ... and roomy ones after login (1 MiB lines, 16 MiB per response). */
extern const struct imap_limits imap_limits_after_login;

/* Literal streaming. Before reading a literal's bytes the reader calls open:
 * partial is the response so far (kind, tag, number, name; no args yet), item
 * the atom right before the literal in its list ("BODY[]", "BINARY[1]") or
 * NULL, size the announced size (possibly huge: never allocate by it).
 * A non-NULL handle takes the literal: its bytes go to write in chunks as
 * they arrive (a non-zero return, a negative errno, fails the parse), and the
 * tree holds an IMAP_SINK value instead of the bytes. NULL keeps the literal
 * in memory, within max_inline_literal.
 * abort is called exactly once for every handle open returned that the caller
 * did not take with imap_response_take_sink: when the response is freed, when
 * the parse fails, when the reader is reset or freed mid-response. */
typedef void *(*imap_sink_open_cb)(void *ctx, const struct imap_response *partial, const char *item,
                                   uint64_t size);
typedef int (*imap_sink_write_cb)(void *ctx, void *handle, const char *p, size_t n);
typedef void (*imap_sink_abort_cb)(void *ctx, void *handle);

struct imap_sink {
	imap_sink_open_cb open;
	imap_sink_write_cb write;
	imap_sink_abort_cb abort;
	void *ctx;
};

struct imap_reader;

/* limits is copied. */
struct imap_reader *imap_reader_new(const struct imap_limits *limits);
/* NULL-safe, clears *r; aborts the sink handles of a response in progress. */
void imap_reader_free(struct imap_reader **r);
/* Takes effect at once (copied); tighten or relax after login. */
void imap_reader_set_limits(struct imap_reader *r, const struct imap_limits *limits);
/* sink is copied; NULL removes it. Takes effect from the next response. */
void imap_reader_set_sink(struct imap_reader *r, const struct imap_sink *sink);

/* Consumes up to len bytes of p; *used_out tells how many.
 * PARSE_DONE: a response is complete (take it with imap_reader_take); the
 * bytes after *used_out belong to the next one: feed them again.
 * PARSE_MORE: all len bytes were consumed and the response is not complete.
 * PARSE_ERR: malformed input, a limit, or a failed sink write;
 * imap_reader_err names the problem and its byte offset in the response. The
 * reader then refuses all input until imap_reader_reset.
 * A complete response not taken before the next feed is freed. Never blocks;
 * memory stays within the limits. */
enum parse_res imap_reader_feed(struct imap_reader *r, const char *p, size_t len, size_t *used_out);

/* The response completed by the last PARSE_DONE, now owned by the caller
 * (imap_response_free); NULL if there is none. */
struct imap_response *imap_reader_take(struct imap_reader *r);

/* Why the last feed returned PARSE_ERR, e.g. "unexpected ')' at offset 17 in
 * response line \"* 1 FETCH (UID 5))\"". Class ERR_PERM for what the server
 * sent (malformed input, limits), ERR_LOCAL for a failed sink write. */
const struct err *imap_reader_err(const struct imap_reader *r);

/* Forgets any partial response (aborting its sink handles) and the error;
 * the reader starts afresh, as for a new connection. */
void imap_reader_reset(struct imap_reader *r);

#endif
