#include "smtp/client.h"

#include "core/base64.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "net/conn.h"
#include "net/sasl.h"
#include "smtp/reply.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

enum step {
	S_CONNECT,
	S_GREETING,
	S_EHLO,
	S_STARTTLS,
	S_AUTH,
	S_READY,
	S_MESSAGE, /* MAIL, RCPTs and DATA asked; their replies come in order */
	S_BODY,	   /* the body is being written */
	S_DOT,	   /* the final "." is out; its reply decides */
	S_RSET,
	S_CLOSED,
};

struct smtp_client {
	uv_loop_t *loop;
	const struct server_conf *sc; /* borrowed */
	char *account;
	struct conn *conn;
	struct smtp_reply reply;
	enum step step;
	bool tls_done, freed;
	unsigned depth; /* our callbacks running: smtp_client_free waits for them */
	char *secret;
	const char *mech; /* AUTH mechanism in use */
	unsigned auth_step;

	/* what EHLO said */
	bool pipelining, eight_bit_mime, smtputf8, starttls;
	bool auth_plain, auth_login, auth_xoauth2;
	uint64_t max_size;

	smtp_done_cb open_done;
	void *open_ctx;

	/* the message being sent */
	struct smtp_envelope env;
	smtp_done_cb done;
	void *ctx;
	size_t next_reply; /* 0: MAIL, 1..n: RCPT i-1, n+1: DATA */
	size_t sent_cmds;  /* commands written so far (without PIPELINING one at a time) */
	int mail_code;
	size_t accepted;
	struct smtp_rcpt_result *rcpts;
	struct buf rcpt_texts; /* "text\0text\0..." in rcpt order */
	size_t *rcpt_text_at;
	struct smtp_result result;
	bool committed; /* before_commit ran: the server may have the message */
	bool line_start, pending_cr, wait_drain;

	/* Lines of a pipelined group, held so that the group leaves in one write
	 * (see smtp_client_send); wiped once written. */
	struct buf batch;
	bool batching;
};

static void step_reply(struct smtp_client *c, int code, const char *text);

/* ---- writing ---- */

static void flush_batch(struct smtp_client *c)
{
	if (c->batch.len == 0)
		return;
	conn_write(c->conn, c->batch.data, c->batch.len);
	explicit_bzero(c->batch.data, c->batch.len);
	buf_reset(&c->batch);
}

static void send_line(struct smtp_client *c, bool secret, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void send_line(struct smtp_client *c, bool secret, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = NULL;
	if (vasprintf(&s, fmt, ap) < 0)
		BUG("out of memory");
	va_end(ap);
	if (secret)
		log_trace("account=%s smtp C: <redacted>", c->account);
	else
		log_trace("account=%s smtp C: %s", c->account, s);
	buf_puts(&c->batch, s);
	buf_puts(&c->batch, "\r\n");
	explicit_bzero(s, strlen(s));
	free(s);
	if (!c->batching)
		flush_batch(c);
}

/* ---- ending things ---- */

static void finish_open(struct smtp_client *c, enum smtp_outcome outcome, const struct err *e)
{
	smtp_done_cb done = c->open_done;
	c->open_done = NULL;
	xfree_secret(&c->secret);
	struct smtp_result r = { .outcome = outcome };
	if (e)
		r.err = *e;
	if (outcome == SMTP_SENT)
		c->step = S_READY;
	if (done)
		done(c->open_ctx, &r);
}

static void finish_message(struct smtp_client *c)
{
	smtp_done_cb done = c->done;
	c->done = NULL;
	for (size_t i = 0; i < c->env.nrcpts; i++)
		c->rcpts[i].text = c->rcpt_texts.data ? c->rcpt_texts.data + c->rcpt_text_at[i] : "";
	c->result.rcpts = c->rcpts;
	c->result.nrcpts = c->env.nrcpts;
	if (c->step != S_CLOSED)
		c->step = S_READY;
	if (done)
		done(c->ctx, &c->result);
	free(c->rcpts);
	free(c->rcpt_text_at);
	buf_free(&c->rcpt_texts);
	c->rcpts = NULL;
	c->rcpt_text_at = NULL;
}

/* The connection is gone (or hopeless): whoever waits hears it once. */
static void fail(struct smtp_client *c, const struct err *e)
{
	enum step was = c->step;
	c->step = S_CLOSED;
	conn_free(&c->conn);
	if (c->open_done) {
		finish_open(c, e->cls == ERR_TEMP ? SMTP_TRY_LATER : SMTP_REFUSED, e);
		return;
	}
	if (c->done) {
		/* After the "." the server may have taken the message: the caller
		 * knows from before_commit and must not simply send it again. */
		c->result.outcome = SMTP_TRY_LATER;
		c->result.err = *e;
		(void)was;
		finish_message(c);
	}
}

static void fail_fmt(struct smtp_client *c, enum err_class cls, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fail_fmt(struct smtp_client *c, enum err_class cls, const char *fmt, ...)
{
	struct err e;
	va_list ap;
	va_start(ap, fmt);
	conn_verr(&e, c->conn, cls, fmt, ap);
	va_end(ap);
	fail(c, &e);
}

/* ---- reading ---- */

static void release(struct smtp_client *c);

static size_t on_data(void *ctx, const char *p, size_t len)
{
	struct smtp_client *c = ctx;
	size_t off = 0;
	c->depth++;
	while (off < len && c->step != S_CLOSED && !c->freed) {
		size_t used = 0;
		enum smtp_parse res = smtp_reply_feed(&c->reply, p + off, len - off, &used);
		off += used;
		if (res == SMTP_MORE)
			break;
		if (res == SMTP_BAD) {
			fail_fmt(c, ERR_PERM, "malformed reply from the server: %s", c->reply.why);
			break;
		}
		char *text = buf_steal(&c->reply.text);
		int code = c->reply.code;
		smtp_reply_reset(&c->reply);
		log_trace("account=%s smtp S: %d %s", c->account, code, text);
		step_reply(c, code, text);
		free(text);
	}
	if (--c->depth == 0 && c->freed)
		release(c);
	return len;
}

static void on_closed(void *ctx, const struct err *err)
{
	struct smtp_client *c = ctx;
	c->depth++;
	fail(c, err);
	if (--c->depth == 0 && c->freed)
		release(c);
}

static void write_body(struct smtp_client *c);

static void on_drained(void *ctx)
{
	struct smtp_client *c = ctx;
	c->wait_drain = false;
	if (c->step == S_BODY)
		write_body(c);
}

static void on_connected(void *ctx, int status, const struct err *err)
{
	struct smtp_client *c = ctx;
	if (status < 0) {
		fail(c, err);
		return;
	}
	c->step = S_GREETING;
}

static const struct conn_handler events = { on_connected, on_data, on_closed, on_drained };

/* ---- opening ---- */

static void send_ehlo(struct smtp_client *c)
{
	char host[256] = "localhost";
	if (gethostname(host, sizeof(host) - 1) < 0 || !strchr(host, '.'))
		snprintf(host, sizeof(host), "localhost");
	c->step = S_EHLO;
	send_line(c, false, "EHLO %s", host);
}

static void parse_ehlo(struct smtp_client *c, const char *text)
{
	c->pipelining = c->eight_bit_mime = c->smtputf8 = c->starttls = false;
	c->auth_plain = c->auth_login = c->auth_xoauth2 = false;
	c->max_size = 0;
	/* The first line greets; each later one names an extension. */
	for (const char *line = strchr(text, '\n'); line; line = strchr(line + 1, '\n')) {
		const char *kw = line + 1;
		size_t n = strcspn(kw, " \n");
		if (n == 10 && strncasecmp(kw, "PIPELINING", n) == 0)
			c->pipelining = true;
		else if (n == 8 && strncasecmp(kw, "8BITMIME", n) == 0)
			c->eight_bit_mime = true;
		else if (n == 8 && strncasecmp(kw, "SMTPUTF8", n) == 0)
			c->smtputf8 = true;
		else if (n == 8 && strncasecmp(kw, "STARTTLS", n) == 0)
			c->starttls = true;
		else if (n == 4 && strncasecmp(kw, "SIZE", n) == 0)
			c->max_size = strtoull(kw + n, NULL, 10);
		else if (n == 4 && strncasecmp(kw, "AUTH", n) == 0) {
			size_t len = strcspn(kw, "\n");
			char *mechs = xstrndup(kw, len);
			for (char *m = strtok(mechs + 4, " "); m; m = strtok(NULL, " ")) {
				c->auth_plain |= strcasecmp(m, "PLAIN") == 0;
				c->auth_login |= strcasecmp(m, "LOGIN") == 0;
				c->auth_xoauth2 |= strcasecmp(m, "XOAUTH2") == 0;
			}
			free(mechs);
		}
	}
}

static void on_tls(void *ctx, int status, const struct err *err)
{
	struct smtp_client *c = ctx;
	if (status < 0) {
		fail(c, err);
		return;
	}
	c->tls_done = true;
	send_ehlo(c); /* RFC 3207 section 4.2: forget what was said in plaintext */
}

static void authenticate(struct smtp_client *c)
{
	if (!c->secret) {
		finish_open(c, SMTP_SENT, NULL);
		return;
	}
	enum auth_mech want = c->sc->auth;
	c->mech = want == AUTH_XOAUTH2			     ? "XOAUTH2"
		  : want == AUTH_LOGIN			     ? "LOGIN"
		  : want == AUTH_PLAIN || c->auth_plain ? "PLAIN"
		  : c->auth_login			     ? "LOGIN"
							     : NULL;
	bool offered = c->mech && ((strcmp(c->mech, "PLAIN") == 0 && c->auth_plain) ||
				   (strcmp(c->mech, "LOGIN") == 0 && c->auth_login) ||
				   (strcmp(c->mech, "XOAUTH2") == 0 && c->auth_xoauth2));
	if (!offered) {
		fail_fmt(c, ERR_PERM, "the server offers no login method allowed by auth%s",
			 c->tls_done || c->sc->tls == TLS_IMPLICIT
				 ? ""
				 : " (many servers offer AUTH only after STARTTLS)");
		return;
	}
	c->step = S_AUTH;
	c->auth_step = 0;
	if (strcmp(c->mech, "LOGIN") == 0) {
		send_line(c, false, "AUTH LOGIN");
		return;
	}
	char *ir = sasl_initial_response(c->mech, c->sc, c->secret);
	send_line(c, true, "AUTH %s %s", c->mech, ir);
	explicit_bzero(ir, strlen(ir));
	free(ir);
}

/* AUTH LOGIN asks for the user, then the password; XOAUTH2 answers a
 * failure with a 334 carrying its error, which gets an empty line. */
static void on_auth_reply(struct smtp_client *c, int code, const char *text)
{
	if (code == 334) {
		unsigned step = c->auth_step++;
		if (strcmp(c->mech, "LOGIN") == 0 && step < 2) {
			const char *s = step == 0 ? c->sc->user : c->secret;
			char *b64 = base64_encode(s, strlen(s));
			send_line(c, step == 1, "%s", b64);
			explicit_bzero(b64, strlen(b64));
			free(b64);
		} else {
			send_line(c, false, "%s", "");
		}
		return;
	}
	if (code == 235) {
		finish_open(c, SMTP_SENT, NULL);
		return;
	}
	fail_fmt(c, code >= 500 ? ERR_AUTH : ERR_TEMP, "authentication failed: %d %s", code, text);
}

static void on_open_reply(struct smtp_client *c, int code, const char *text)
{
	switch (c->step) {
	case S_GREETING:
		if (code != 220) {
			fail_fmt(c, ERR_TEMP, "the server refused the connection: %d %s", code, text);
			return;
		}
		send_ehlo(c);
		return;
	case S_EHLO:
		if (code != 250) {
			fail_fmt(c, ERR_PERM, "EHLO refused: %d %s", code, text);
			return;
		}
		parse_ehlo(c, text);
		if (c->sc->tls == TLS_STARTTLS && !c->tls_done) {
			if (!c->starttls) {
				fail_fmt(c, ERR_PERM,
					 "the server does not offer STARTTLS (tls = \"starttls\")");
				return;
			}
			c->step = S_STARTTLS;
			send_line(c, false, "STARTTLS");
			return;
		}
		authenticate(c);
		return;
	case S_STARTTLS:
		if (code != 220) {
			fail_fmt(c, ERR_PERM, "STARTTLS refused: %d %s", code, text);
			return;
		}
		conn_start_tls(c->conn, on_tls);
		return;
	case S_AUTH:
		on_auth_reply(c, code, text);
		return;
	default:
		fail_fmt(c, ERR_PERM, "a reply nobody asked for: %d %s", code, text);
	}
}

struct smtp_client *smtp_client_new(uv_loop_t *loop, const struct server_conf *sc,
				    const char *account)
{
	struct smtp_client *c = xcalloc(1, sizeof(*c));
	c->loop = loop;
	c->sc = sc;
	c->account = xstrdup(account);
	c->conn = conn_new_for_server(loop, sc, &events, c);
	return c;
}

void smtp_client_open(struct smtp_client *c, const char *secret, smtp_done_cb done, void *ctx)
{
	c->secret = secret ? xstrdup(secret) : NULL;
	c->open_done = done;
	c->open_ctx = ctx;
	c->step = S_CONNECT;
	conn_start(c->conn);
}

/* ---- messages ---- */

/* What a refusal code means for the message. */
static enum smtp_outcome outcome_of(int code)
{
	return smtp_transient(code) ? SMTP_TRY_LATER : SMTP_REFUSED;
}

static void refuse(struct smtp_client *c, int code, const char *what, const char *text)
{
	if (c->result.outcome != SMTP_SENT)
		return; /* the first refusal is the one to report */
	c->result.outcome = code ? outcome_of(code) : SMTP_REFUSED;
	err_set(&c->result.err, -EPROTO, c->result.outcome == SMTP_TRY_LATER ? ERR_TEMP : ERR_PERM,
		"%s: %s: %d %s", conn_name(c->conn), what, code, text);
}

/* After a refusal the transaction is reset before the next message. */
static void reset_then_finish(struct smtp_client *c)
{
	c->step = S_RSET;
	send_line(c, false, "RSET");
}

static void send_command(struct smtp_client *c, size_t i)
{
	const struct smtp_envelope *e = &c->env;
	if (i == 0) {
		struct buf b = { 0 };
		buf_printf(&b, "MAIL FROM:<%s>", e->from);
		if (c->max_size)
			buf_printf(&b, " SIZE=%llu", (unsigned long long)e->size);
		if (e->eight_bit && c->eight_bit_mime)
			buf_puts(&b, " BODY=8BITMIME");
		if (e->utf8_addresses)
			buf_puts(&b, " SMTPUTF8");
		send_line(c, false, "%s", buf_str(&b));
		buf_free(&b);
	} else if (i <= e->nrcpts) {
		send_line(c, false, "RCPT TO:<%s>", e->rcpts[i - 1]);
	} else {
		send_line(c, false, "DATA");
	}
	c->sent_cmds = i + 1;
}

/* Line ends to CRLF, leading dots doubled (RFC 5321 section 4.5.2). */
static void transform(struct smtp_client *c, const char *p, size_t n, struct buf *out)
{
	for (size_t i = 0; i < n; i++) {
		char ch = p[i];
		if (c->pending_cr) {
			c->pending_cr = false;
			if (ch == '\n') {
				buf_puts(out, "\r\n");
				c->line_start = true;
				continue;
			}
			buf_putc(out, '\r'); /* a bare CR stays as it is */
			c->line_start = false;
		}
		if (ch == '\r') {
			c->pending_cr = true;
		} else if (ch == '\n') {
			buf_puts(out, "\r\n");
			c->line_start = true;
		} else {
			if (c->line_start && ch == '.')
				buf_putc(out, '.');
			buf_putc(out, ch);
			c->line_start = false;
		}
	}
}

static void end_body(struct smtp_client *c)
{
	struct buf tail = { 0 };
	if (c->pending_cr || !c->line_start)
		buf_puts(&tail, "\r\n");
	c->pending_cr = false;
	buf_puts(&tail, ".\r\n");
	if (c->env.before_commit)
		c->env.before_commit(c->env.read_ctx);
	c->committed = true;
	c->step = S_DOT;
	log_trace("account=%s smtp C: <message> .", c->account);
	conn_write(c->conn, tail.data, tail.len);
	buf_free(&tail);
}

static void write_body(struct smtp_client *c)
{
	char chunk[65536];
	struct buf out = { 0 };
	while (c->step == S_BODY && !c->wait_drain) {
		struct err e = { 0 };
		ssize_t n = c->env.read(c->env.read_ctx, chunk, sizeof(chunk), &e);
		if (n < 0) {
			/* The promise of DATA cannot be kept: drop the connection, which
			 * aborts the transaction without delivering anything. */
			err_prefix(&e, "%s: cannot read the message being sent", conn_name(c->conn));
			buf_free(&out);
			fail(c, &e);
			return;
		}
		if (n == 0) {
			end_body(c);
			break;
		}
		buf_reset(&out);
		transform(c, chunk, (size_t)n, &out);
		if (!conn_write(c->conn, out.data, out.len))
			c->wait_drain = true;
	}
	buf_free(&out);
}

static void on_message_reply(struct smtp_client *c, int code, const char *text)
{
	size_t n = c->env.nrcpts, i = c->next_reply++;
	if (i == 0) {
		c->mail_code = code;
		if (!smtp_positive(code))
			refuse(c, code, "MAIL FROM", text);
	} else if (i <= n) {
		struct smtp_rcpt_result *r = &c->rcpts[i - 1];
		r->code = code;
		c->rcpt_text_at[i - 1] = c->rcpt_texts.len;
		buf_append(&c->rcpt_texts, text, strlen(text) + 1);
		if (smtp_positive(code))
			c->accepted++;
	} else if (code == 354 && c->accepted && smtp_positive(c->mail_code)) {
		c->step = S_BODY;
		c->line_start = true;
		write_body(c);
		return;
	} else {
		for (size_t k = 0; k < n && c->accepted == 0; k++)
			if (c->rcpts[k].code)
				refuse(c, c->rcpts[k].code, "RCPT TO", buf_str(&c->rcpt_texts) +
								 c->rcpt_text_at[k]);
		refuse(c, code == 354 ? 0 : code, "DATA", text);
		if (code == 354)
			conn_write(c->conn, ".\r\n", 3); /* end the empty data it opened */
		reset_then_finish(c);
		return;
	}
	/* Without PIPELINING each command waits for the one before; a refused
	 * MAIL stops the rest. */
	if (!c->pipelining && c->sent_cmds == c->next_reply) {
		if (i == 0 && !smtp_positive(code))
			reset_then_finish(c);
		else
			send_command(c, c->next_reply);
	}
}

static void step_reply(struct smtp_client *c, int code, const char *text)
{
	switch (c->step) {
	case S_MESSAGE:
		on_message_reply(c, code, text);
		return;
	case S_DOT:
		if (!smtp_positive(code)) {
			refuse(c, code, "end of data", text);
			reset_then_finish(c);
			return;
		}
		finish_message(c);
		return;
	case S_RSET:
		finish_message(c);
		return;
	default:
		on_open_reply(c, code, text);
	}
}

void smtp_client_send(struct smtp_client *c, const struct smtp_envelope *env, smtp_done_cb done,
		      void *ctx)
{
	BUG_ON(c->step != S_READY || env->nrcpts == 0);
	c->env = *env;
	c->done = done;
	c->ctx = ctx;
	c->next_reply = c->sent_cmds = c->accepted = 0;
	c->mail_code = 0;
	c->committed = false;
	c->result = (struct smtp_result){ .outcome = SMTP_SENT };
	c->rcpts = xcalloc(env->nrcpts, sizeof(*c->rcpts));
	c->rcpt_text_at = xcalloc(env->nrcpts, sizeof(size_t));
	for (size_t i = 0; i < env->nrcpts; i++)
		c->rcpts[i].rcpt = env->rcpts[i];
	c->step = S_MESSAGE;
	if (c->max_size && env->size > c->max_size) {
		char why[96];
		snprintf(why, sizeof(why), "the message (%llu bytes) is larger than the server takes",
			 (unsigned long long)env->size);
		refuse(c, 552, "SIZE", why);
		finish_message(c);
		return;
	}
	if (env->utf8_addresses && !c->smtputf8) {
		refuse(c, 553, "SMTPUTF8", "an address is not ASCII and the server lacks SMTPUTF8");
		finish_message(c);
		return;
	}
	/* RFC 2920: the group goes out in one TCP send. Written command by
	 * command, MAIL FROM left in a segment of its own, the server answered
	 * it alone, and each message then stalled some 40 ms on a delayed ACK
	 * (Postfix; tests/bench/outbox). */
	size_t last = c->pipelining ? env->nrcpts + 1 : 0;
	c->batching = true;
	for (size_t i = 0; i <= last; i++)
		send_command(c, i);
	c->batching = false;
	flush_batch(c);
}

bool smtp_client_ready(const struct smtp_client *c)
{
	return c->step == S_READY;
}

static void release(struct smtp_client *c)
{
	xfree_secret(&c->secret);
	buf_free(&c->batch);
	smtp_reply_free(&c->reply);
	free(c->rcpts);
	free(c->rcpt_text_at);
	buf_free(&c->rcpt_texts);
	free(c->account);
	free(c);
}

void smtp_client_free(struct smtp_client **cp)
{
	struct smtp_client *c = *cp;
	if (!c)
		return;
	*cp = NULL;
	c->freed = true;
	conn_free(&c->conn); /* no more connection callbacks */
	if (c->depth == 0)
		release(c); /* else the callback running now finishes it */
}
