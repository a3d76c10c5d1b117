#include "imap/client_priv.h"

#include "core/log.h"
#include "core/xalloc.h"
#include "imap/quote.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

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

struct imap_client *imap_client_new(uv_loop_t *loop, const struct server_conf *sc,
				    const char *account, const struct imap_client_handler *h,
				    void *ctx)
{
	static unsigned next_id;
	struct imap_client *c = xcalloc(1, sizeof(*c));
	c->id = ++next_id;
	c->loop = loop;
	c->sc = sc;
	c->account = xstrdup(account);
	c->h = h;
	c->ctx = ctx;
	c->reader = imap_reader_new(&imap_limits_before_login);
	c->conn = conn_new_for_server(loop, sc, &conn_events, c);
	uv_timer_init(loop, &c->defer);
	c->defer.data = c;
	return c;
}

static void cmd_destroy(struct imap_cmd *cmd)
{
	for (size_t i = 0; i < cmd->nparts; i++) {
		struct cmd_part *p = &cmd->parts[i];
		if (cmd->secret) {
			if (p->text.data)
				explicit_bzero(p->text.data, p->text.len);
			if (p->mem.data)
				explicit_bzero(p->mem.data, p->mem.len);
		}
		buf_free(&p->text);
		buf_free(&p->mem);
	}
	free(cmd->parts);
	free(cmd);
}

static void on_defer_closed(uv_handle_t *h)
{
	free(h->data);
}

static void release(struct imap_client *c)
{
	while (c->head) {
		struct imap_cmd *next = c->head->next;
		cmd_destroy(c->head);
		c->head = next;
	}
	conn_free(&c->conn);
	imap_reader_free(&c->reader);
	xfree_secret(&c->secret);
	free(c->bye);
	free(c->account);
	uv_close((uv_handle_t *)&c->defer, on_defer_closed); /* frees c */
}

void imap_client_free(struct imap_client **cp)
{
	struct imap_client *c = *cp;
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
static bool leave(struct imap_client *c)
{
	if (--c->depth == 0 && c->doomed) {
		release(c);
		return false;
	}
	return !c->doomed;
}

/* ---- accessors ---- */

const struct imap_caps *imap_client_caps(const struct imap_client *c)
{
	return &c->caps;
}

bool imap_client_has(const struct imap_client *c, enum imap_cap cap)
{
	return imap_caps_has(&c->caps, cap);
}

bool imap_client_qresync(const struct imap_client *c)
{
	return c->qresync;
}

const char *imap_client_account(const struct imap_client *c)
{
	return c->account;
}

const char *imap_client_name(const struct imap_client *c)
{
	return c->conn ? conn_name(c->conn) : "(closed)";
}

const char *imap_client_security(const struct imap_client *c)
{
	return c->conn ? conn_security(c->conn) : "closed";
}

size_t imap_client_pending(const struct imap_client *c)
{
	size_t n = 0;
	for (const struct imap_cmd *cmd = c->head; cmd; cmd = cmd->next)
		n++;
	return n;
}

void imap_client_set_sink(struct imap_client *c, const struct imap_sink *sink)
{
	imap_reader_set_sink(c->reader, sink);
}

void imap_client_disable(struct imap_client *c, enum imap_cap cap)
{
	c->disabled |= UINT64_C(1) << cap;
	c->caps.bits &= ~c->disabled;
}

void client_set_caps(struct imap_client *c, const struct imap_value *vals, size_t n)
{
	imap_caps_parse(&c->caps, vals, n);
	c->caps.bits &= ~c->disabled;
	c->caps_fresh = true;
}

/* ---- building commands ---- */

static struct cmd_part *last_part(struct imap_cmd *cmd)
{
	if (cmd->nparts == 0 || cmd->parts[cmd->nparts - 1].lit) {
		cmd->parts = xgrow(cmd->parts, &cmd->cap, cmd->nparts + 1, sizeof(*cmd->parts));
		cmd->parts[cmd->nparts] = (struct cmd_part){ 0 };
		cmd->nparts++;
	}
	return &cmd->parts[cmd->nparts - 1];
}

static void vadd(struct imap_cmd *cmd, const char *fmt, va_list ap)
{
	char small[512];
	va_list copy;
	va_copy(copy, ap);
	int n = vsnprintf(small, sizeof(small), fmt, copy);
	va_end(copy);
	struct buf *t = &last_part(cmd)->text;
	if (n >= 0 && (size_t)n < sizeof(small)) {
		buf_append(t, small, (size_t)n);
		return;
	}
	char *big = NULL;
	if (vasprintf(&big, fmt, ap) < 0)
		BUG("out of memory formatting a command");
	buf_puts(t, big);
	free(big);
}

struct imap_cmd *imap_cmd_new(struct imap_client *c, const char *fmt, ...)
{
	struct imap_cmd *cmd = xcalloc(1, sizeof(*cmd));
	cmd->c = c;
	snprintf(cmd->tag, sizeof(cmd->tag), "A%u", ++c->next_tag);
	imap_cmd_add(cmd, "%s ", cmd->tag);
	va_list ap;
	va_start(ap, fmt);
	vadd(cmd, fmt, ap);
	va_end(ap);
	/* The verb is the first word, or two for "UID FETCH": enough to say which
	 * command failed without repeating its arguments (or secrets). */
	const char *s = cmd->parts[0].text.data + strlen(cmd->tag) + 1;
	size_t n = strcspn(s, " ");
	if (n == 3 && strncasecmp(s, "UID", 3) == 0 && s[3] == ' ')
		n += 1 + strcspn(s + 4, " ");
	snprintf(cmd->verb, sizeof(cmd->verb), "%.*s", (int)n, s);
	cmd->is_idle = strcasecmp(cmd->verb, "IDLE") == 0;
	return cmd;
}

void imap_cmd_add(struct imap_cmd *cmd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vadd(cmd, fmt, ap);
	va_end(ap);
}

/* Starts a literal of size bytes after the text so far. LITERAL+ (RFC 7888)
 * makes any literal non-synchronizing, LITERAL- only those up to 4096 bytes;
 * otherwise the client waits for the server's "+" before sending the bytes. */
static struct cmd_part *add_literal(struct imap_cmd *cmd, uint64_t size)
{
	struct imap_client *c = cmd->c;
	struct cmd_part *p = last_part(cmd);
	bool plus = imap_caps_has(&c->caps, CAP_LITERAL_PLUS) ||
		    (imap_caps_has(&c->caps, CAP_LITERAL_MINUS) && size <= 4096);
	buf_printf(&p->text, "{%llu%s}\r\n", (unsigned long long)size, plus ? "+" : "");
	p->lit = true;
	p->lit_sync = !plus;
	p->size = size;
	return p;
}

void imap_cmd_astring(struct imap_cmd *cmd, const char *s)
{
	struct buf *t = &last_part(cmd)->text;
	buf_putc(t, ' ');
	if (imap_quote_astring(t, s, strlen(s), 0) != IMAP_QUOTE_LITERAL)
		return;
	struct cmd_part *p = add_literal(cmd, strlen(s));
	buf_puts(&p->mem, s);
}

int imap_cmd_mailbox(struct imap_cmd *cmd, const char *name, struct err *err)
{
	struct buf *t = &last_part(cmd)->text;
	buf_putc(t, ' ');
	return imap_quote_mailbox(t, name, strlen(name), 0, err);
}

void imap_cmd_literal_stream(struct imap_cmd *cmd, uint64_t size, imap_literal_read_cb read,
			     void *ctx)
{
	buf_putc(&last_part(cmd)->text, ' ');
	struct cmd_part *p = add_literal(cmd, size);
	p->read = read;
	p->read_ctx = ctx;
}

void imap_cmd_secret(struct imap_cmd *cmd)
{
	cmd->secret = true;
}

void imap_cmd_claim(struct imap_cmd *cmd, const char *name, imap_untagged_cb cb)
{
	BUG_ON(cmd->nclaims == ARRAY_SIZE(cmd->claims));
	struct cmd_claim *cl = &cmd->claims[cmd->nclaims++];
	snprintf(cl->name, sizeof(cl->name), "%s", name);
	cl->cb = cb;
}

void imap_cmd_continue(struct imap_cmd *cmd, imap_continue_cb cb)
{
	cmd->cont = cb;
	cmd->hold = true;
}

void client_mark_hold(struct imap_cmd *cmd)
{
	cmd->hold = true;
}

void imap_cmd_free(struct imap_cmd **cmdp)
{
	if (*cmdp)
		cmd_destroy(*cmdp);
	*cmdp = NULL;
}

/* ---- writing ---- */

static void update_timeout(struct imap_client *c)
{
	if (!c->conn || c->state == CL_CLOSED || c->state == CL_NEW ||
	    c->state == CL_CONNECTING)
		return;
	/* A quiet connection is fine while nothing is asked, or while IDLE waits
	 * for news: the owner runs its own keepalive then. */
	const struct imap_cmd *idle = c->holder;
	bool idle_quiet = idle && idle->is_idle && idle->idling && !idle->done_sent &&
			  c->head == idle && !idle->next;
	bool waiting = c->head && !idle_quiet;
	conn_set_timeout(c->conn, waiting ? (unsigned)c->sc->timeout * 1000 : 0);
}

static void trace_command(const struct imap_cmd *cmd)
{
	if (!log_enabled(LOG_TRACE))
		return;
	if (cmd->secret) {
		log_trace("account=%s conn=%u C: %s %s <redacted>", cmd->c->account, cmd->c->id,
			  cmd->tag, cmd->verb);
		return;
	}
	const struct buf *t = &cmd->parts[0].text;
	int n = (int)strcspn(t->data, "\r\n");
	log_trace("account=%s conn=%u C: %.*s%s", cmd->c->account, cmd->c->id, n > 300 ? 300 : n,
		  t->data, cmd->nparts > 1 || n > 300 ? " ..." : "");
}

static void on_deferred_failure(uv_timer_t *t)
{
	struct imap_client *c = t->data;
	client_fail(c, &c->deferred);
}

/* A failure found while writing, perhaps inside imap_cmd_send: callbacks run
 * from the loop, never from inside a call, so it is reported a moment later.
 * Nothing more is written meanwhile. */
static void fail_later(struct imap_client *c, const struct err *e)
{
	c->deferred = *e;
	c->wait_drain = true;
	uv_timer_start(&c->defer, on_deferred_failure, 0, 0);
}

/* Streams a literal from its reader; false when the queue is full (or the
 * reader failed, which ends the connection). */
static bool write_stream_literal(struct imap_client *c, struct imap_cmd *cmd,
				 struct cmd_part *p)
{
	char chunk[65536];
	while (cmd->lit_off < p->size) {
		uint64_t want = p->size - cmd->lit_off;
		size_t n = want < sizeof(chunk) ? (size_t)want : sizeof(chunk);
		struct err e = { 0 };
		ssize_t got = p->read(p->read_ctx, chunk, n, &e);
		if (got <= 0 || (size_t)got > n) {
			if (got >= 0)
				err_set(&e, -EIO, ERR_LOCAL, "the message ended early");
			err_prefix(&e, "%s: %s: cannot read the message being sent",
				   conn_name(c->conn), cmd->verb);
			fail_later(c, &e);
			return false;
		}
		cmd->lit_off += (uint64_t)got;
		if (!conn_write(c->conn, chunk, (size_t)got) && cmd->lit_off < p->size) {
			c->wait_drain = true;
			return false;
		}
	}
	return true;
}

/* Writes one command as far as it can go; true when all of it is out. */
static bool write_command(struct imap_client *c, struct imap_cmd *cmd)
{
	for (; cmd->part < cmd->nparts; cmd->part++) {
		struct cmd_part *p = &cmd->parts[cmd->part];
		if (!cmd->text_sent) {
			if (cmd->part == 0)
				trace_command(cmd);
			conn_write(c->conn, p->text.data, p->text.len);
			cmd->text_sent = true;
			cmd->lit_off = 0;
			if (p->lit && p->lit_sync) {
				cmd->wait_cont = true;
				return false;
			}
		}
		if (cmd->wait_cont)
			return false;
		if (p->lit && p->read && !write_stream_literal(c, cmd, p))
			return false;
		if (p->lit && !p->read)
			conn_write(c->conn, p->mem.data, p->mem.len);
		cmd->text_sent = false;
	}
	conn_write(c->conn, "\r\n", 2);
	return true;
}

static void pump(struct imap_client *c)
{
	while (c->wcursor && !c->holder && !c->wait_drain && c->state != CL_CLOSED) {
		struct imap_cmd *cmd = c->wcursor;
		if (!write_command(c, cmd))
			return;
		c->wcursor = cmd->next;
		if (cmd->hold)
			c->holder = cmd;
	}
}

const char *imap_cmd_send(struct imap_cmd *cmd, imap_done_cb done, void *ctx)
{
	struct imap_client *c = cmd->c;
	cmd->done = done;
	cmd->ctx = ctx;
	if (c->tail)
		c->tail->next = cmd;
	else
		c->head = cmd;
	c->tail = cmd;
	if (!c->wcursor)
		c->wcursor = cmd;
	/* A command behind IDLE would wait forever: leave IDLE first. */
	if (c->holder && c->holder->is_idle)
		imap_client_idle_done(c);
	pump(c);
	update_timeout(c);
	return cmd->tag;
}

void imap_client_idle_done(struct imap_client *c)
{
	struct imap_cmd *idle = c->holder;
	if (!idle || !idle->is_idle || idle->done_sent || !c->conn)
		return;
	/* RFC 2177: DONE only after the server's "+"; until then it is remembered. */
	idle->done_wanted = true;
	if (!idle->idling)
		return;
	log_trace("account=%s conn=%u C: DONE", c->account, c->id);
	conn_write(c->conn, "DONE\r\n", 6);
	idle->done_sent = true;
	update_timeout(c);
}

static void on_conn_drained(void *ctx)
{
	struct imap_client *c = ctx;
	c->wait_drain = false;
	pump(c);
}

/* ---- completing commands ---- */

static void unlink_cmd(struct imap_client *c, struct imap_cmd *cmd)
{
	struct imap_cmd **pp = &c->head, *prev = NULL;
	while (*pp && *pp != cmd) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	BUG_ON(!*pp);
	*pp = cmd->next;
	if (c->tail == cmd)
		c->tail = prev;
	if (c->wcursor == cmd)
		c->wcursor = cmd->next;
	if (c->holder == cmd)
		c->holder = NULL;
}

/* Runs cmd's callback and frees it. Returns false if the client is gone. */
static bool complete(struct imap_client *c, struct imap_cmd *cmd, const struct imap_reply *reply)
{
	unlink_cmd(c, cmd);
	ENTER(c);
	if (cmd->done)
		cmd->done(cmd->ctx, reply);
	cmd_destroy(cmd);
	return leave(c);
}

/* What a refusal means for what happens next: RFC 5530 codes (and Gmail's
 * [THROTTLED]), then the words of servers that limit an account without a
 * fitting code: Office 365's "Request is throttled" (even as BAD), Gmail's
 * "[ALERT] Too many simultaneous connections" and "Account exceeded command
 * or bandwidth limits" (also under [OVERQUOTA], which RFC 5530 keeps for a
 * full mailbox, a lasting refusal). How long to wait is daemon/backoff.c's
 * business. */
static enum err_class refusal_class(const struct imap_response *r)
{
	static const char *const temporary[] = { "UNAVAILABLE", "INUSE",    "SERVERBUG",
						 "LIMIT",	"THROTTLED", "CONTACTADMIN" };
	static const char *const auth[] = { "AUTHENTICATIONFAILED", "AUTHORIZATIONFAILED",
					    "EXPIRED", "PRIVACYREQUIRED" };
	static const char *const limited[] = { "throttl", "too many simultaneous connections",
					       "bandwidth limits" };
	for (size_t i = 0; i < ARRAY_SIZE(temporary); i++)
		if (imap_response_code_is(r, temporary[i]))
			return ERR_TEMP;
	for (size_t i = 0; i < ARRAY_SIZE(auth); i++)
		if (imap_response_code_is(r, auth[i]))
			return ERR_AUTH;
	for (size_t i = 0; i < ARRAY_SIZE(limited) && r->text; i++)
		if (strcasestr(r->text, limited[i]))
			return ERR_TEMP;
	return ERR_PERM;
}

static void on_tagged(struct imap_client *c, struct imap_response *r)
{
	struct imap_cmd *cmd = c->head;
	while (cmd && strcmp(cmd->tag, r->tag) != 0)
		cmd = cmd->next;
	if (!cmd) {
		struct err e;
		err_set(&e, -EPROTO, ERR_PERM, "%s: the server answered a command never sent: %s",
			conn_name(c->conn), imap_response_line(r));
		client_fail(c, &e);
		return;
	}
	if (imap_response_code_is(r, "CAPABILITY"))
		client_set_caps(c, r->code_args, r->ncode_args);
	struct imap_reply reply = { .status = r->status, .tagged = r };
	if (r->status != IMAP_STATUS_OK) {
		/* The line without its tag, so no argument (or secret) is repeated. */
		const char *line = imap_response_line(r);
		const char *rest = strchr(line, ' ');
		err_set(&reply.err, -EPROTO, refusal_class(r), "%s: %s: %s", conn_name(c->conn),
			cmd->verb, rest ? rest + 1 : line);
	}
	if (complete(c, cmd, &reply)) {
		pump(c);
		update_timeout(c);
	}
}

static void write_secret_line(struct imap_client *c, char *line, bool secret)
{
	log_trace("account=%s conn=%u C: %s", c->account, c->id, secret ? "<redacted>" : line);
	conn_write(c->conn, line, strlen(line));
	conn_write(c->conn, "\r\n", 2);
	explicit_bzero(line, strlen(line));
	free(line);
}

static void on_continue(struct imap_client *c, struct imap_response *r)
{
	struct imap_cmd *cmd = c->wcursor;
	if (cmd && cmd->wait_cont) {
		cmd->wait_cont = false;
		pump(c);
		return;
	}
	cmd = c->holder;
	if (!cmd || (!cmd->cont && !cmd->is_idle)) {
		struct err e;
		err_set(&e, -EPROTO, ERR_PERM, "%s: unexpected continuation request: %s",
			conn_name(c->conn), imap_response_line(r));
		client_fail(c, &e);
		return;
	}
	if (cmd->is_idle) {
		cmd->idling = true;
		if (cmd->done_wanted)
			imap_client_idle_done(c);
		update_timeout(c);
	}
	if (!cmd->cont)
		return;
	ENTER(c);
	char *line = cmd->cont(cmd->ctx, r);
	if (!leave(c)) {
		free(line);
		return;
	}
	if (line)
		write_secret_line(c, line, cmd->secret);
}

static void on_untagged(struct imap_client *c, struct imap_response *r)
{
	if (r->name && strcmp(r->name, "CAPABILITY") == 0)
		client_set_caps(c, r->args, r->nargs);
	if (r->status != IMAP_STATUS_NONE) {
		if (imap_response_code_is(r, "CAPABILITY"))
			client_set_caps(c, r->code_args, r->ncode_args);
		if (imap_response_code_is(r, "ALERT"))
			log_warn("account=%s server=%s alert: %s", c->account, conn_name(c->conn),
				 r->text);
		if (r->status == IMAP_STATUS_BYE) {
			free(c->bye);
			c->bye = xstrdup(r->text ? r->text : "");
		}
	}
	for (struct imap_cmd *cmd = c->head; cmd && r->name; cmd = cmd->next)
		for (size_t i = 0; i < cmd->nclaims; i++)
			if (strcmp(cmd->claims[i].name, r->name) == 0) {
				ENTER(c);
				cmd->claims[i].cb(cmd->ctx, r);
				leave(c);
				return;
			}
	if (c->h && c->h->untagged) {
		ENTER(c);
		c->h->untagged(c->ctx, r);
		leave(c);
	}
}

static void dispatch(struct imap_client *c, struct imap_response *r)
{
	if (log_enabled(LOG_TRACE))
		log_trace("account=%s conn=%u S: %s", c->account, c->id, imap_response_line(r));
	if (c->state == CL_GREETING) {
		login_greeting(c, r);
		return;
	}
	switch (r->kind) {
	case IMAP_RESP_TAGGED:
		on_tagged(c, r);
		break;
	case IMAP_RESP_CONTINUE:
		on_continue(c, r);
		break;
	case IMAP_RESP_UNTAGGED:
		on_untagged(c, r);
		break;
	}
}

/* ---- reading and connection events ---- */

static size_t on_conn_data(void *ctx, const char *p, size_t len)
{
	struct imap_client *c = ctx;
	size_t off = 0;
	ENTER(c);
	while (off < len && !c->doomed && c->state != CL_CLOSED) {
		size_t used = 0;
		enum parse_res res = imap_reader_feed(c->reader, p + off, len - off, &used);
		off += used;
		if (res == PARSE_MORE)
			break;
		if (res == PARSE_ERR) {
			struct err e = *imap_reader_err(c->reader);
			err_prefix(&e, "%s: malformed response from the server", conn_name(c->conn));
			client_fail(c, &e);
			break;
		}
		struct imap_response *r = imap_reader_take(c->reader);
		dispatch(c, r);
		imap_response_free(&r);
	}
	leave(c);
	return len; /* the reader keeps what it needs of a partial response */
}

void client_open_finished(struct imap_client *c, const struct imap_reply *reply)
{
	imap_done_cb done = c->open_done;
	c->open_done = NULL;
	xfree_secret(&c->secret);
	if (reply->status == IMAP_STATUS_OK)
		c->state = CL_READY;
	if (done) {
		ENTER(c);
		done(c->open_ctx, reply);
		leave(c);
	}
}

void client_open_failed(struct imap_client *c, enum err_class cls, const char *fmt, ...)
{
	struct err e;
	va_list ap;
	va_start(ap, fmt);
	conn_verr(&e, c->conn, cls, fmt, ap);
	va_end(ap);
	client_fail(c, &e);
}

void client_fail(struct imap_client *c, const struct err *err)
{
	if (c->state == CL_CLOSED)
		return;
	bool was_ready = c->state == CL_READY;
	c->state = CL_CLOSED;
	struct err e = *err;
	conn_free(&c->conn);
	/* A response cut off in the middle of a body: its sink handles are
	 * aborted now, while the owner's delivery batch still exists. */
	imap_reader_reset(c->reader);
	ENTER(c);
	/* The owner hears first that the connection is gone: the callbacks of
	 * the commands may hand the client back to it (sync/pool.c), which must
	 * not then take it for a usable one. */
	if (!c->doomed && was_ready && c->h && c->h->closed)
		c->h->closed(c->ctx, &e);
	while (c->head && !c->doomed) {
		struct imap_reply reply = { .status = IMAP_STATUS_NONE, .err = e };
		complete(c, c->head, &reply);
	}
	if (!c->doomed && c->open_done) {
		struct imap_reply reply = { .status = IMAP_STATUS_NONE, .err = e };
		client_open_finished(c, &reply);
	}
	leave(c);
}

void imap_client_abort(struct imap_client *c, const struct err *err)
{
	client_fail(c, err);
}

static void on_conn_closed(void *ctx, const struct err *err)
{
	struct imap_client *c = ctx;
	struct err e = *err;
	if (c->bye && err->msg[0])
		err_set(&e, -ECONNRESET, ERR_TEMP, "%s: the server closed the connection: %s",
			conn_name(c->conn), c->bye);
	client_fail(c, &e);
}

static void on_conn_connected(void *ctx, int status, const struct err *err)
{
	struct imap_client *c = ctx;
	if (status < 0) {
		client_fail(c, err);
		return;
	}
	c->state = CL_GREETING;
	log_debug("account=%s server=%s event=connected security=\"%s\"", c->account,
		  conn_name(c->conn), conn_security(c->conn));
}

void imap_client_open(struct imap_client *c, const char *secret, imap_done_cb done, void *ctx)
{
	BUG_ON(c->state != CL_NEW);
	c->secret = secret ? xstrdup(secret) : NULL;
	c->open_done = done;
	c->open_ctx = ctx;
	c->state = CL_CONNECTING;
	conn_start(c->conn);
}

void client_after_login(struct imap_client *c)
{
	imap_reader_set_limits(c->reader, &imap_limits_after_login);
}

static void on_logout(void *ctx, const struct imap_reply *reply)
{
	struct imap_client *c = ctx;
	imap_done_cb done = c->logout_done;
	void *done_ctx = c->logout_ctx;
	c->state = CL_CLOSED;
	conn_free(&c->conn);
	/* A connection that drops after LOGOUT was sent has logged out too. */
	struct imap_reply ok = { .status = IMAP_STATUS_OK, .tagged = reply->tagged };
	if (done)
		done(done_ctx, &ok);
}

void imap_client_logout(struct imap_client *c, imap_done_cb done, void *ctx)
{
	BUG_ON(c->state != CL_READY);
	c->logout_done = done;
	c->logout_ctx = ctx;
	imap_cmd_send(imap_cmd_new(c, "LOGOUT"), on_logout, c);
}
