/* The inside of struct pop3_client, shared by client.c (connection, command
 * queue, dispatch) and login.c (greeting, CAPA, STLS, authentication).
 * Nothing outside daemon/pop3/ includes this. */
#ifndef MF_POP3_CLIENT_PRIV_H
#define MF_POP3_CLIENT_PRIV_H

#include "net/conn.h"
#include "pop3/client.h"

enum client_state {
	CL_NEW,
	CL_CONNECTING,
	CL_GREETING,
	CL_LOGIN, /* CAPA, STLS, authentication: one command at a time */
	CL_READY,
	CL_CLOSED, /* the connection is gone; only pop3_client_free remains */
};

/* Answers a SASL continuation ("+ challenge"): the line to send (without
 * CRLF; the client owns and wipes it). */
typedef char *(*pop3_cont_cb)(void *ctx, const char *challenge);

struct pop3_cmd {
	struct pop3_cmd *next;
	struct buf line; /* with CRLF */
	char what[48];   /* for messages: "RETR 5", or only the verb of a secret */
	struct pop3_cmd_opts o;
	struct pop3_sink sink;
	pop3_cont_cb cont;
	bool hold; /* nothing behind it is written before its answer */
	bool sent;
	char *ok_text, *ok_code; /* the +OK line of a multi-line answer */
	pop3_done_cb done;
	void *ctx;
};

struct pop3_client {
	uv_loop_t *loop;
	const struct server_conf *sc; /* borrowed */
	char *account;
	unsigned id; /* tells connections apart in traces */
	enum client_state state;
	struct conn *conn;
	struct pop3_reader *reader;

	struct pop3_cmd *head, *tail; /* sent, in order, until answered */
	struct pop3_cmd *wcursor;     /* first command not written yet */
	unsigned on_wire;             /* written and not answered */
	bool hold_on_wire;            /* one of them holds back the rest */
	bool in_block;                /* the head's multi-line block is being read */
	bool wait_drain;

	bool caps[POP3_CAP_COUNT_];
	bool caps_known;
	char *apop_stamp; /* the greeting's <timestamp>, NULL without */
	struct buf caps_text;

	uv_timer_t defer; /* reports failures found inside a pop3_* call */
	struct err failure;
	unsigned depth; /* callbacks in progress; free only at depth 0 */
	bool doomed;

	/* login */
	char *secret;
	pop3_done_cb open_done, quit_done;
	void *open_ctx, *quit_ctx;
	bool upgrading; /* STLS accepted: the rest of the input waits for TLS */
	bool capa_done, tls_done, authenticated, capa_after_login;
	const char *method; /* "AUTH PLAIN", "USER", "APOP" */
	const char *mech;   /* the SASL mechanism of AUTH, NULL otherwise */
	unsigned sasl_step; /* continuations answered so far */
};

/* login.c */
void pop3_login_greeting(struct pop3_client *c, const struct pop3_item *it);

/* client.c, for login.c */
/* Queues a login command (ctx is c): one at a time, with an optional SASL
 * answerer. */
void pop3_cl_send_login(struct pop3_client *c, const struct pop3_cmd_opts *o, pop3_cont_cb cont,
			pop3_done_cb done, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* What a response code says about retrying (RFC 2449 section 8, RFC 3206);
 * dflt for a reply without a code or with one not listed there. */
enum err_class pop3_cl_code_class(const char *code, enum err_class dflt);
void pop3_cl_open_finished(struct pop3_client *c, const struct pop3_reply *reply);
/* A failure of the open sequence, written as "host:port: what". */
void pop3_cl_open_failed(struct pop3_client *c, enum err_class cls, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The connection is unusable: fail everything. */
void pop3_cl_fail(struct pop3_client *c, const struct err *err);

#endif
