/* The inside of struct imap_client, shared by client.c (connection, command
 * queue, dispatch) and login.c (greeting, STARTTLS, authentication, ENABLE).
 * Nothing outside daemon/imap/ includes this. */
#ifndef MF_IMAP_CLIENT_PRIV_H
#define MF_IMAP_CLIENT_PRIV_H

#include "core/buf.h"
#include "imap/client.h"
#include "net/conn.h"

enum client_state {
	CL_NEW,
	CL_CONNECTING,
	CL_GREETING,
	CL_LOGIN, /* STARTTLS, authentication, capabilities, ENABLE */
	CL_READY,
	CL_CLOSED, /* the connection is gone; only imap_client_free remains */
};

struct cmd_part {
	struct buf text; /* sent as is; ends with a literal's {n} header if lit */
	bool lit, lit_sync;
	struct buf mem; /* the literal's bytes when in memory */
	imap_literal_read_cb read; /* or pulled from here */
	void *read_ctx;
	uint64_t size;
};

struct cmd_claim {
	char name[16];
	imap_untagged_cb cb;
};

struct imap_cmd {
	struct imap_client *c;
	struct imap_cmd *next;
	char tag[16];
	char verb[24]; /* for messages: "LOGIN", "UID FETCH" */
	struct cmd_part *parts;
	size_t nparts, cap;
	bool secret, hold, is_idle;
	bool idling, done_wanted, done_sent; /* IDLE: "+" seen, DONE asked, DONE sent */
	struct cmd_claim claims[4];
	size_t nclaims;
	imap_continue_cb cont;
	imap_done_cb done;
	void *ctx;
	/* writer progress */
	size_t part;
	bool text_sent, wait_cont;
	uint64_t lit_off;
};

struct imap_client {
	uv_loop_t *loop;
	const struct server_conf *sc; /* borrowed */
	char *account;
	unsigned id; /* tells this account's connections apart in traces */
	const struct imap_client_handler *h;
	void *ctx;
	enum client_state state;
	struct conn *conn;
	struct imap_reader *reader;
	struct imap_caps caps;
	uint64_t disabled; /* capability bits to ignore */
	bool qresync, condstore;
	unsigned next_tag;

	struct imap_cmd *head, *tail; /* submitted, in order, until completed */
	struct imap_cmd *wcursor;     /* first command not fully written */
	struct imap_cmd *holder;      /* written; holds back the rest until done */
	bool wait_drain;

	char *bye; /* text of the server's BYE, for the error when it hangs up */
	uv_timer_t defer; /* reports a failure found inside an imap_* call */
	struct err deferred;
	unsigned depth; /* callbacks in progress; free only at depth 0 */
	bool doomed;

	/* login */
	char *secret;
	imap_done_cb open_done;
	void *open_ctx;
	bool tls_done, caps_fresh, authenticated, enabled;
	const char *auth_mech; /* "PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER"; NULL: LOGIN command */
	unsigned sasl_step;    /* continuation requests answered so far */
	imap_done_cb logout_done;
	void *logout_ctx;
};

/* login.c */
void login_greeting(struct imap_client *c, struct imap_response *r);

/* client.c, for login.c */
void client_set_caps(struct imap_client *c, const struct imap_value *vals, size_t n);
void client_open_finished(struct imap_client *c, const struct imap_reply *reply);
void client_after_login(struct imap_client *c);
/* The connection is unusable (a fatal protocol problem): fail everything. */
void client_fail(struct imap_client *c, const struct err *err);
/* A failure of the open sequence, written as "host:port: what". */
void client_open_failed(struct imap_client *c, enum err_class cls, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void client_mark_hold(struct imap_cmd *cmd);

#endif
