#include "pop3/client_priv.h"

#include "core/log.h"
#include "core/xalloc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The budget of a multi-line answer when the command names none. */
#define DEFAULT_BUDGET (1024 * 1024)

/* ---- life ---- */

static void on_conn_connected(void *ctx, int status, const struct err *err);
static size_t on_conn_data(void *ctx, const char *p, size_t len);
static void on_conn_closed(void *ctx, const struct err *err);
static void on_conn_drained(void *ctx);

static const struct conn_handler conn_events = {
	on_conn_connected,
	on_conn_data,
	on_conn_closed,
	on_conn_drained,
};

struct pop3_client *pop3_client_new(uv_loop_t *loop, const struct server_conf *sc,
				    const char *account)
{
	static unsigned next_id;
	struct pop3_client *c = xcalloc(1, sizeof(*c));
	c->id = ++next_id;
	c->loop = loop;
	c->sc = sc;
	c->account = xstrdup(account);
	c->reader = pop3_reader_new();
	c->conn = conn_new_for_server(loop, sc, &conn_events, c);
	uv_timer_init(loop, &c->defer);
	c->defer.data = c;
	return c;
}

static void cmd_destroy(struct pop3_cmd *cmd)
{
	if (cmd->o.secret && cmd->line.data)
		explicit_bzero(cmd->line.data, cmd->line.len);
	buf_free(&cmd->line);
	free(cmd->ok_text);
	free(cmd->ok_code);
	free(cmd);
}

static void on_defer_closed(uv_handle_t *h)
{
	free(h->data);
}

static void release(struct pop3_client *c)
{
	while (c->head) {
		struct pop3_cmd *next = c->head->next;
		cmd_destroy(c->head);
		c->head = next;
	}
	conn_free(&c->conn);
	pop3_reader_free(&c->reader);
	xfree_secret(&c->secret);
	free(c->apop_stamp);
	buf_free(&c->caps_text);
	free(c->account);
	uv_close((uv_handle_t *)&c->defer, on_defer_closed); /* frees c */
}

void pop3_client_free(struct pop3_client **cp)
{
	struct pop3_client *c = *cp;
	if (!c)
		return;
	*cp = NULL;
	conn_free(&c->conn); /* no connection callback runs any more */
	if (c->depth > 0)
		c->doomed = true; /* a callback of ours is on the stack: finish there */
	else
		release(c);
}

/* Brackets every call out to the owner: the owner may free the client. */
#define ENTER(c) ((c)->depth++)
static bool leave(struct pop3_client *c)
{
	if (--c->depth == 0 && c->doomed) {
		release(c);
		return false;
	}
	return !c->doomed;
}

/* ---- accessors ---- */

bool pop3_client_has(const struct pop3_client *c, enum pop3_cap cap)
{
	return c->caps[cap];
}

bool pop3_client_caps_known(const struct pop3_client *c)
{
	return c->caps_known;
}

void pop3_client_caps_format(const struct pop3_client *c, struct buf *out)
{
	buf_puts(out, c->caps_known ? buf_str(&c->caps_text) : "(no CAPA)");
	if (c->apop_stamp)
		buf_puts(out, ", APOP");
}

const char *pop3_client_login_method(const struct pop3_client *c)
{
	return c->method ? c->method : "none";
}

const char *pop3_client_name(const struct pop3_client *c)
{
	return c->conn ? conn_name(c->conn) : "(closed)";
}

const char *pop3_client_security(const struct pop3_client *c)
{
	return c->conn ? conn_security(c->conn) : "closed";
}

enum err_class pop3_cl_code_class(const char *code, enum err_class dflt)
{
	if (strcasecmp(code, "IN-USE") == 0 || strcasecmp(code, "LOGIN-DELAY") == 0 ||
	    strncasecmp(code, "SYS/TEMP", 8) == 0)
		return ERR_TEMP;
	if (strcasecmp(code, "AUTH") == 0)
		return ERR_AUTH;
	if (strncasecmp(code, "SYS/PERM", 8) == 0)
		return ERR_PERM;
	return dflt;
}

/* ---- writing ---- */

static void trace_command(const struct pop3_client *c, const struct pop3_cmd *cmd)
{
	if (!log_enabled(LOG_TRACE))
		return;
	if (cmd->o.secret)
		log_trace("account=%s conn=%u C: %s <redacted>", c->account, c->id, cmd->what);
	else
		log_trace("account=%s conn=%u C: %.*s", c->account, c->id, (int)(cmd->line.len - 2),
			  cmd->line.data);
}

/* Writes what may go now: everything with PIPELINING once logged in; else
 * (and around a command that holds) one command at a time. */
static void pump(struct pop3_client *c)
{
	while (c->wcursor && !c->wait_drain && c->state != CL_CLOSED && c->conn) {
		struct pop3_cmd *cmd = c->wcursor;
		bool pipelined = c->state == CL_READY && c->caps[POP3_CAP_PIPELINING];
		if (c->on_wire > 0 && (c->hold_on_wire || cmd->hold || !pipelined))
			return;
		trace_command(c, cmd);
		bool room = conn_write(c->conn, cmd->line.data, cmd->line.len);
		cmd->sent = true;
		c->on_wire++;
		c->hold_on_wire |= cmd->hold;
		c->wcursor = cmd->next;
		if (!room)
			c->wait_drain = true;
	}
}

static void on_conn_drained(void *ctx)
{
	struct pop3_client *c = ctx;
	c->wait_drain = false;
	pump(c);
}

/* Runs cmd's callback and frees it; cmd is the oldest command. Returns
 * false if the client is gone. */
static bool complete(struct pop3_client *c, struct pop3_cmd *cmd, const struct pop3_reply *reply)
{
	BUG_ON(c->head != cmd);
	c->head = cmd->next;
	if (c->tail == cmd)
		c->tail = NULL;
	if (c->wcursor == cmd)
		c->wcursor = cmd->next;
	if (cmd->sent) {
		c->on_wire--;
		if (cmd->hold)
			c->hold_on_wire = false;
	}
	ENTER(c);
	if (cmd->done)
		cmd->done(cmd->ctx, reply);
	cmd_destroy(cmd);
	return leave(c);
}

static void fail_pending(struct pop3_client *c)
{
	while (c->head && !c->doomed) {
		struct pop3_reply reply = {
			.status = POP3_STATUS_NONE, .code = "", .text = "", .err = c->failure
		};
		complete(c, c->head, &reply);
	}
}

static void on_deferred_failure(uv_timer_t *t)
{
	struct pop3_client *c = t->data;
	ENTER(c);
	fail_pending(c);
	leave(c);
}

static struct pop3_cmd *cmd_new(const struct pop3_cmd_opts *o, const char *fmt, va_list ap)
{
	struct pop3_cmd *cmd = xcalloc(1, sizeof(*cmd));
	if (o)
		cmd->o = *o;
	if (cmd->o.sink) {
		cmd->sink = *cmd->o.sink;
		cmd->o.sink = &cmd->sink;
	}
	if (!cmd->o.max_bytes)
		cmd->o.max_bytes = DEFAULT_BUDGET;
	char *text = NULL;
	if (vasprintf(&text, fmt, ap) < 0)
		BUG("out of memory formatting a command");
	buf_puts(&cmd->line, text);
	buf_puts(&cmd->line, "\r\n");
	/* A secret's line is named by its verb (and AUTH by its mechanism, which
	 * is no secret); other lines by themselves. */
	size_t n = strlen(text);
	if (cmd->o.secret) {
		n = strcspn(text, " ");
		if (n == 4 && strncasecmp(text, "AUTH", 4) == 0 && text[4] == ' ')
			n += 1 + strcspn(text + 5, " ");
	}
	snprintf(cmd->what, sizeof(cmd->what), "%.*s", (int)n, text);
	explicit_bzero(text, strlen(text));
	free(text);
	return cmd;
}

static void enqueue(struct pop3_client *c, struct pop3_cmd *cmd, pop3_done_cb done, void *ctx)
{
	cmd->done = done;
	cmd->ctx = ctx;
	if (c->tail)
		c->tail->next = cmd;
	else
		c->head = cmd;
	c->tail = cmd;
	if (!c->wcursor)
		c->wcursor = cmd;
	if (c->state == CL_CLOSED)
		uv_timer_start(&c->defer, on_deferred_failure, 0, 0);
	else
		pump(c);
}

void pop3_client_send(struct pop3_client *c, const struct pop3_cmd_opts *o, pop3_done_cb done,
		      void *ctx, const char *fmt, ...)
{
	BUG_ON(c->state != CL_READY && c->state != CL_CLOSED);
	va_list ap;
	va_start(ap, fmt);
	struct pop3_cmd *cmd = cmd_new(o, fmt, ap);
	va_end(ap);
	enqueue(c, cmd, done, ctx);
}

void pop3_cl_send_login(struct pop3_client *c, const struct pop3_cmd_opts *o, pop3_cont_cb cont,
			pop3_done_cb done, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	struct pop3_cmd *cmd = cmd_new(o, fmt, ap);
	va_end(ap);
	cmd->hold = true;
	cmd->cont = cont;
	enqueue(c, cmd, done, c);
}

/* ---- reading ---- */

static void finish_cmd(struct pop3_client *c, struct pop3_cmd *cmd, enum pop3_kind kind,
		       const char *code, const char *text)
{
	struct pop3_reply reply = { .code = code, .text = text };
	if (kind == POP3_OK) {
		reply.status = POP3_STATUS_OK;
	} else {
		reply.status = POP3_STATUS_ERR;
		err_set(&reply.err, -EPROTO, pop3_cl_code_class(code, ERR_PERM),
			"%s: %s: -ERR %s%s%s%s", conn_name(c->conn), cmd->what, code[0] ? "[" : "",
			code, code[0] ? "] " : "", text);
	}
	if (complete(c, cmd, &reply))
		pump(c);
}

static void protocol_error(struct pop3_client *c, const char *what, const char *text)
{
	struct err e;
	err_set(&e, -EPROTO, ERR_PERM, "%s: %s: \"%.200s\"", conn_name(c->conn), what, text);
	pop3_cl_fail(c, &e);
}

static void answer_continuation(struct pop3_client *c, struct pop3_cmd *cmd,
				const struct pop3_item *it)
{
	if (!cmd->cont) {
		protocol_error(c, "unexpected continuation request", it->text);
		return;
	}
	ENTER(c);
	char *line = cmd->cont(c, it->text);
	if (!leave(c) || c->state == CL_CLOSED) {
		free(line);
		return;
	}
	log_trace("account=%s conn=%u C: <redacted>", c->account, c->id);
	conn_write(c->conn, line, strlen(line));
	conn_write(c->conn, "\r\n", 2);
	explicit_bzero(line, strlen(line));
	free(line);
}

static void on_status(struct pop3_client *c, const struct pop3_item *it)
{
	struct pop3_cmd *cmd = c->head;
	if (!cmd || !cmd->sent) {
		protocol_error(c, "the server answered a command never sent", it->text);
		return;
	}
	if (it->kind == POP3_CONT) {
		answer_continuation(c, cmd, it);
		return;
	}
	if (it->kind == POP3_OK && cmd->o.multi) {
		cmd->ok_text = xstrdup(it->text);
		cmd->ok_code = xstrdup(it->code);
		pop3_reader_multi(c->reader, cmd->o.line ? NULL : cmd->o.sink, cmd->o.max_bytes);
		c->in_block = true;
		return;
	}
	finish_cmd(c, cmd, it->kind, it->code, it->text);
}

static void on_line(struct pop3_client *c, const struct pop3_item *it)
{
	struct pop3_cmd *cmd = c->head;
	if (!cmd->o.line)
		return;
	struct err e = { 0 };
	ENTER(c);
	int rc = cmd->o.line(cmd->ctx, it->text, it->len, &e);
	if (!leave(c) || rc >= 0)
		return;
	err_prefix(&e, "%s: %s", conn_name(c->conn), cmd->what);
	pop3_cl_fail(c, &e);
}

static void dispatch(struct pop3_client *c, const struct pop3_item *it)
{
	if (it->kind != POP3_LINE && it->kind != POP3_END && log_enabled(LOG_TRACE))
		log_trace("account=%s conn=%u S: %s%s%s%s%s%s", c->account, c->id,
			  it->kind == POP3_OK    ? "+OK"
			  : it->kind == POP3_ERR ? "-ERR"
						 : "+",
			  it->code[0] ? " [" : "", it->code, it->code[0] ? "]" : "",
			  it->len ? " " : "", it->text);
	if (c->state == CL_GREETING) {
		pop3_login_greeting(c, it);
		return;
	}
	switch (it->kind) {
	case POP3_OK:
	case POP3_ERR:
	case POP3_CONT:
		on_status(c, it);
		break;
	case POP3_LINE:
		on_line(c, it);
		break;
	case POP3_END:
		c->in_block = false;
		finish_cmd(c, c->head, POP3_OK, c->head->ok_code, c->head->ok_text);
		break;
	}
}

static size_t on_conn_data(void *ctx, const char *p, size_t len)
{
	struct pop3_client *c = ctx;
	size_t off = 0;
	ENTER(c);
	while (off < len && !c->doomed && c->state != CL_CLOSED && !c->upgrading) {
		struct pop3_item it;
		size_t used = 0;
		enum pop3_res res = pop3_reader_feed(c->reader, p + off, len - off, &used, &it);
		off += used;
		if (res == POP3_MORE)
			break;
		if (res == POP3_FAIL) {
			struct err e = *pop3_reader_err(c->reader);
			err_prefix(&e, "%s: %s", conn_name(c->conn),
				   c->head && e.cls != ERR_LOCAL ? c->head->what
				   : c->head                     ? "storing the answer"
								 : "greeting");
			pop3_cl_fail(c, &e);
			break;
		}
		dispatch(c, &it);
	}
	bool upgrading = c->upgrading && !c->doomed;
	leave(c);
	/* After the +OK to STLS, anything more is the connection's to judge
	 * (RFC 2595 section 4: plaintext that follows it is an attack). */
	return upgrading ? off : len;
}

/* ---- the connection's life ---- */

void pop3_cl_open_finished(struct pop3_client *c, const struct pop3_reply *reply)
{
	pop3_done_cb done = c->open_done;
	c->open_done = NULL;
	xfree_secret(&c->secret);
	if (reply->status == POP3_STATUS_OK)
		c->state = CL_READY;
	if (done) {
		ENTER(c);
		done(c->open_ctx, reply);
		leave(c);
	}
}

void pop3_cl_open_failed(struct pop3_client *c, enum err_class cls, const char *fmt, ...)
{
	struct err e;
	va_list ap;
	va_start(ap, fmt);
	conn_verr(&e, c->conn, cls, fmt, ap);
	va_end(ap);
	pop3_cl_fail(c, &e);
}

void pop3_cl_fail(struct pop3_client *c, const struct err *err)
{
	if (c->state == CL_CLOSED)
		return;
	c->state = CL_CLOSED;
	c->failure = *err;
	c->upgrading = false;
	c->in_block = false;
	conn_free(&c->conn);
	pop3_reader_reset(c->reader);
	ENTER(c);
	fail_pending(c);
	if (!c->doomed && c->open_done) {
		struct pop3_reply reply = {
			.status = POP3_STATUS_NONE, .code = "", .text = "", .err = c->failure
		};
		pop3_cl_open_finished(c, &reply);
	}
	leave(c);
}

void pop3_client_abort(struct pop3_client *c, const struct err *err)
{
	pop3_cl_fail(c, err);
}

static void on_conn_closed(void *ctx, const struct err *err)
{
	pop3_cl_fail(ctx, err);
}

static void on_conn_connected(void *ctx, int status, const struct err *err)
{
	struct pop3_client *c = ctx;
	if (status < 0) {
		pop3_cl_fail(c, err);
		return;
	}
	c->state = CL_GREETING;
	log_debug("account=%s server=%s event=connected security=\"%s\"", c->account,
		  conn_name(c->conn), conn_security(c->conn));
}

void pop3_client_open(struct pop3_client *c, const char *secret, pop3_done_cb done, void *ctx)
{
	BUG_ON(c->state != CL_NEW);
	c->secret = secret ? xstrdup(secret) : NULL;
	c->open_done = done;
	c->open_ctx = ctx;
	c->state = CL_CONNECTING;
	conn_start(c->conn);
}

static void on_quit(void *ctx, const struct pop3_reply *reply)
{
	struct pop3_client *c = ctx;
	pop3_done_cb done = c->quit_done;
	c->quit_done = NULL;
	if (c->state != CL_CLOSED) {
		struct err e;
		err_set(&e, -ESHUTDOWN, ERR_TEMP, "%s: the session has ended (QUIT)",
			conn_name(c->conn));
		c->state = CL_CLOSED;
		c->failure = e;
		conn_free(&c->conn);
	}
	if (done)
		done(c->quit_ctx, reply);
}

void pop3_client_quit(struct pop3_client *c, pop3_done_cb done, void *ctx)
{
	c->quit_done = done;
	c->quit_ctx = ctx;
	pop3_client_send(c, NULL, on_quit, c, "QUIT");
}
