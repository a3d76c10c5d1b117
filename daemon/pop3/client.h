/* One POP3 connection: connect (implicit TLS or STLS, RFC 2595), read the
 * greeting, learn the capabilities (CAPA, RFC 2449), log in (SASL PLAIN,
 * XOAUTH2 or OAUTHBEARER through AUTH, RFC 5034; USER/PASS; APOP, RFC 1939
 * section 7), then run commands, each with its own completion callback.
 *
 * POP3 answers in order and has no tags: the client keeps the commands in a
 * queue and matches each response to the oldest one. With PIPELINING (RFC
 * 2449) commands are written as soon as they are sent, so a batch costs one
 * round trip; without it, one command is on the wire at a time. A command
 * whose +OK opens a multi-line block hands its lines to a callback (CAPA,
 * UIDL, LIST) or streams them to a sink (RETR: dot-unstuffed, LF line ends),
 * within a byte budget, so a message never sits in memory and a server that
 * never ends its answer fails instead of filling memory.
 *
 * Secrets never reach a log: PASS, APOP and AUTH lines (and SASL responses)
 * are traced as "<redacted>". Depends on net/, config/ and the parser. */
#ifndef MF_POP3_CLIENT_H
#define MF_POP3_CLIENT_H

#include "config/config.h"
#include "core/buf.h"
#include "core/err.h"
#include "pop3/parse.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct pop3_client;

enum pop3_status { POP3_STATUS_OK, POP3_STATUS_ERR, POP3_STATUS_NONE };

/* How a command ended: +OK, -ERR, or NONE when the connection failed first.
 * For ERR, err holds "host:port: RETR 5: -ERR [CODE] text" ready to log, its
 * class from the response code (IN-USE, LOGIN-DELAY, SYS/TEMP: temporary;
 * AUTH: authentication; otherwise permanent); for NONE, why the connection
 * failed. text and code are the status line's (borrowed for the call; ""
 * for NONE). */
struct pop3_reply {
	enum pop3_status status;
	const char *code;
	const char *text;
	struct err err;
};

typedef void (*pop3_done_cb)(void *ctx, const struct pop3_reply *reply);
/* One line of a multi-line answer (unstuffed, no line end). A negative
 * errno with e set ends the connection: the answer made no sense. */
typedef int (*pop3_line_cb)(void *ctx, const char *line, size_t len, struct err *e);

/* What a command expects; a zeroed struct is a one-line command. */
struct pop3_cmd_opts {
	bool multi;                   /* +OK opens a multi-line block */
	uint64_t max_bytes;           /* the block's budget on the wire; 0: 1 MiB */
	pop3_line_cb line;            /* the block's lines go here, or */
	const struct pop3_sink *sink; /* its bytes stream here (copied) */
	bool secret;                  /* traced as its verb and "<redacted>" */
};

enum pop3_cap {
	POP3_CAP_TOP,
	POP3_CAP_USER,
	POP3_CAP_UIDL,
	POP3_CAP_PIPELINING,
	POP3_CAP_RESP_CODES,
	POP3_CAP_STLS,
	POP3_CAP_SASL_PLAIN,
	POP3_CAP_SASL_LOGIN,
	POP3_CAP_SASL_XOAUTH2,
	POP3_CAP_SASL_OAUTHBEARER,
	POP3_CAP_APOP, /* the greeting carries a timestamp */
	POP3_CAP_COUNT_
};

/* sc is borrowed for the client's life; account names the client in logs. */
struct pop3_client *pop3_client_new(uv_loop_t *loop, const struct server_conf *sc,
				    const char *account);
/* Tears the connection down at once; pending commands are dropped without
 * callbacks. Safe inside a callback of this client. NULL-safe, clears *cp. */
void pop3_client_free(struct pop3_client **cp);

/* Connects, reads the greeting, upgrades with STLS when configured, learns
 * the capabilities, logs in with secret (copied, wiped after use) as the
 * config's auth asks, and learns the capabilities again. done runs once,
 * from the loop; err->cls is ERR_AUTH when the server refused the
 * credentials. */
void pop3_client_open(struct pop3_client *c, const char *secret, pop3_done_cb done, void *ctx);

/* Queues a command (the line without CRLF, printf-style); done runs once,
 * from the loop. Only for an open client; after a failure the command fails
 * at once (status NONE) with the failure's error. */
void pop3_client_send(struct pop3_client *c, const struct pop3_cmd_opts *o, pop3_done_cb done,
		      void *ctx, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* QUIT: the server enters its UPDATE state and removes the messages marked
 * with DELE; done with status OK means it did. Afterwards the connection is
 * closed (done runs once either way). */
void pop3_client_quit(struct pop3_client *c, pop3_done_cb done, void *ctx);

/* Drops the connection now: every pending command completes with err
 * (status NONE), from inside this call. The client stays until
 * pop3_client_free. */
void pop3_client_abort(struct pop3_client *c, const struct err *err);

bool pop3_client_has(const struct pop3_client *c, enum pop3_cap cap);
/* Whether the server answered CAPA (a server without it offers USER at most,
 * and UIDL or TOP only as far as trying tells). */
bool pop3_client_caps_known(const struct pop3_client *c);
/* Appends the capabilities as "TOP UIDL PIPELINING ..." (for --check). */
void pop3_client_caps_format(const struct pop3_client *c, struct buf *out);
/* How the client logged in: "AUTH PLAIN", "USER", "APOP" ... */
const char *pop3_client_login_method(const struct pop3_client *c);
/* "host:port", and the TLS version and cipher or "plaintext". */
const char *pop3_client_name(const struct pop3_client *c);
const char *pop3_client_security(const struct pop3_client *c);

#endif
