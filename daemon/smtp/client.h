/* One SMTP submission connection (RFC 5321, 6409): greeting, EHLO, STARTTLS
 * (RFC 3207) or implicit TLS, AUTH PLAIN / LOGIN / XOAUTH2 (RFC 4954), then
 * messages one after the other on the same connection, with PIPELINING
 * (RFC 2920), SIZE (RFC 1870), 8BITMIME (RFC 6152) and SMTPUTF8 (RFC 6531)
 * where offered. The body streams from a reader: line ends become CRLF and
 * lines starting with '.' are stuffed (section 4.5.2) on the way. Secrets
 * never reach a log. Depends on net/, config/ and the reply parser. */
#ifndef MF_SMTP_CLIENT_H
#define MF_SMTP_CLIENT_H

#include "config/config.h"
#include "core/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

struct smtp_client;

/* Where a failure leaves a message: sent, try again later, or never. */
enum smtp_outcome { SMTP_SENT, SMTP_TRY_LATER, SMTP_REFUSED };

struct smtp_rcpt_result {
	const char *rcpt;
	int code; /* the RCPT reply; 0 when it was never asked */
	const char *text;
};

struct smtp_result {
	enum smtp_outcome outcome;
	struct err err; /* for TRY_LATER and REFUSED: "host:port: RCPT TO:<x>: 550 ..." */
	const struct smtp_rcpt_result *rcpts; /* per recipient, valid during the callback */
	size_t nrcpts;
};

typedef void (*smtp_done_cb)(void *ctx, const struct smtp_result *r);
/* Fills buf with the next bytes of the message as stored (any line ends);
 * 0 at the end, a negative errno with err set on failure. */
typedef ssize_t (*smtp_read_cb)(void *ctx, char *buf, size_t len, struct err *err);

struct smtp_envelope {
	const char *from;	 /* the reverse-path, without <> ("" for a bounce) */
	char *const *rcpts;	 /* without <> */
	size_t nrcpts;
	uint64_t size;		 /* the message's size, for SIZE= */
	bool eight_bit;		 /* the message has bytes above 127: BODY=8BITMIME */
	bool utf8_addresses;	 /* an address is not ASCII: SMTPUTF8 */
	smtp_read_cb read;
	void *read_ctx;
	/* Runs right before the final "." goes out, the moment the server may
	 * take the message: the caller records the attempt durably there. */
	void (*before_commit)(void *ctx);
};

/* sc is borrowed for the client's life. */
struct smtp_client *smtp_client_new(uv_loop_t *loop, const struct server_conf *sc,
				    const char *account);
/* Connects, greets, upgrades, authenticates with secret (NULL: no AUTH).
 * done runs once; outcome SENT means ready. */
void smtp_client_open(struct smtp_client *c, const char *secret, smtp_done_cb done, void *ctx);
/* Sends one message; done runs once with the outcome. Recipients the server
 * refuses are reported in rcpts; the message goes to the others. A message
 * larger than the server's SIZE, or with non-ASCII addresses for a server
 * without SMTPUTF8, is refused before anything is sent: then done runs
 * before this returns. */
void smtp_client_send(struct smtp_client *c, const struct smtp_envelope *env, smtp_done_cb done,
		      void *ctx);
/* Whether the connection can take another message. */
bool smtp_client_ready(const struct smtp_client *c);
/* Closes the connection; NULL-safe, clears *cp; no callback runs afterwards. */
void smtp_client_free(struct smtp_client **cp);

#endif
