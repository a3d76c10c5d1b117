/* One IMAP connection: connect, log in, and run pipelined tagged commands,
 * each with its own completion callback. Untagged data updates what the
 * client knows (capabilities) and goes either to the command that claimed it
 * (LIST, STATUS, SEARCH...) or to the owner's handler (EXISTS, EXPUNGE,
 * VANISHED, FETCH, alerts): the untagged data of a command always arrives
 * before its completion callback.
 *
 * Commands are written as soon as they are submitted, so a batch of them
 * costs one round trip; a command that needs the server's go-ahead (a
 * synchronizing literal, AUTHENTICATE, IDLE, STARTTLS) holds back the ones
 * behind it until it may go on. Message bodies stream: uploads from a file
 * descriptor with the connection's backpressure, downloads into the sink the
 * owner sets (imap/parse.h).
 *
 * Secrets never reach a log: commands marked secret are traced as
 * "<redacted>". Depends on net/, config/ (server settings) and the parser. */
#ifndef MF_IMAP_CLIENT_H
#define MF_IMAP_CLIENT_H

#include "config/config.h"
#include "core/err.h"
#include "imap/caps.h"
#include "imap/parse.h"
#include "imap/response.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

struct imap_client;
struct imap_cmd;

/* How a command ended. status is OK, NO or BAD from the tagged response, or
 * NONE when the connection failed first (err says why); tagged is NULL then.
 * For NO and BAD, err holds "host:port: COMMAND: NO [CODE] text" ready to log. */
struct imap_reply {
	enum imap_status status;
	const struct imap_response *tagged; /* borrowed for the callback */
	struct err err;
};

typedef void (*imap_done_cb)(void *ctx, const struct imap_reply *reply);
/* Untagged data; r is borrowed for the call (sinks in it may be taken). */
typedef void (*imap_untagged_cb)(void *ctx, struct imap_response *r);
/* A continuation request ("+ ...") for a command that asked for them; returns
 * the line to send (without CRLF; the client owns it and wipes it), or NULL to
 * send nothing yet. */
typedef char *(*imap_continue_cb)(void *ctx, const struct imap_response *r);

struct imap_client_handler {
	/* Untagged data no running command claimed. */
	imap_untagged_cb untagged;
	/* The connection ended after imap_client_open succeeded (server gone,
	 * BYE, timeout, a response it could not take). Runs before the pending
	 * commands complete with the error; never after imap_client_free. */
	void (*closed)(void *ctx, const struct err *err);
};

/* sc is borrowed for the client's life; account names the client in logs. */
struct imap_client *imap_client_new(uv_loop_t *loop, const struct server_conf *sc,
				    const char *account, const struct imap_client_handler *h,
				    void *ctx);
/* Tears the connection down at once; pending commands are dropped without
 * callbacks. NULL-safe, clears *cp. */
void imap_client_free(struct imap_client **cp);

/* Connects, reads the greeting, upgrades with STARTTLS when configured,
 * authenticates with secret (a password or OAuth token; copied and wiped after
 * use), learns the capabilities and enables QRESYNC or CONDSTORE. done runs once;
 * err->cls is ERR_AUTH when the server refused the credentials. */
void imap_client_open(struct imap_client *c, const char *secret, imap_done_cb done, void *ctx);
/* Drops the connection now: every pending command completes with err (status
 * NONE), from inside this call. The client stays until imap_client_free. */
void imap_client_abort(struct imap_client *c, const struct err *err);
/* LOGOUT, then the connection is closed; done runs once either way. Only for
 * an open client. */
void imap_client_logout(struct imap_client *c, imap_done_cb done, void *ctx);

const struct imap_caps *imap_client_caps(const struct imap_client *c);
bool imap_client_has(const struct imap_client *c, enum imap_cap cap);
/* Extensions switched on by ENABLE (QRESYNC implies CONDSTORE). */
bool imap_client_qresync(const struct imap_client *c);
/* The account name given at creation, for messages. */
const char *imap_client_account(const struct imap_client *c);
/* "host:port", and the TLS version and cipher or "plaintext". */
const char *imap_client_name(const struct imap_client *c);
const char *imap_client_security(const struct imap_client *c);
/* Commands submitted and not yet completed. */
size_t imap_client_pending(const struct imap_client *c);
/* Where streamed literals go (copied; NULL: keep literals in memory). */
void imap_client_set_sink(struct imap_client *c, const struct imap_sink *sink);
/* Ignores capabilities, as if the server had not offered them (tests,
 * broken servers). */
void imap_client_disable(struct imap_client *c, enum imap_cap cap);

/* Building a command: start it with its verb and plain arguments, add more,
 * then send it. Nothing is written before imap_cmd_send. */
struct imap_cmd *imap_cmd_new(struct imap_client *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Plain text appended as it is (atoms, numbers, sets, parenthesised lists). */
void imap_cmd_add(struct imap_cmd *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A space, then s as an atom, a quoted string or a literal, whichever it needs. */
void imap_cmd_astring(struct imap_cmd *cmd, const char *s);
/* A space, then a UTF-8 mailbox name encoded for the wire. Returns -EILSEQ
 * (and the command must be dropped) for a name that cannot be sent. */
int imap_cmd_mailbox(struct imap_cmd *cmd, const char *name, struct err *err);
/* Fills buf[0..len) with the next bytes of a streamed literal; returns how
 * many (> 0), or a negative errno with err set (the connection is then
 * dropped: a literal's length is a promise). */
typedef ssize_t (*imap_literal_read_cb)(void *ctx, char *buf, size_t len, struct err *err);
/* A space, then a literal of exactly size bytes pulled from read while the
 * command is written, with the connection's backpressure (ctx stays valid
 * until the command is done). */
void imap_cmd_literal_stream(struct imap_cmd *cmd, uint64_t size, imap_literal_read_cb read,
			     void *ctx);
/* The command carries a secret: traces show only its verb. */
void imap_cmd_secret(struct imap_cmd *cmd);
/* While this command runs, untagged responses called name (LIST, STATUS,
 * SEARCH, ESEARCH...) go to cb instead of the handler. */
void imap_cmd_claim(struct imap_cmd *cmd, const char *name, imap_untagged_cb cb);
/* Continuation requests go to cb; commands behind this one wait until it ends. */
void imap_cmd_continue(struct imap_cmd *cmd, imap_continue_cb cb);
/* Queues the command; done runs once, from the loop. Returns the tag. */
const char *imap_cmd_send(struct imap_cmd *cmd, imap_done_cb done, void *ctx);
/* Drops a command that was built but not sent. */
void imap_cmd_free(struct imap_cmd **cmdp);

/* For a running IDLE: ends it by sending DONE (its done runs on the tagged OK). */
void imap_client_idle_done(struct imap_client *c);

#endif
