#include "net/conn.h"

#include "core/buf.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "net/tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum conn_state {
	ST_NEW,
	ST_RESOLVING,
	ST_CONNECTING,
	ST_HANDSHAKE, /* implicit TLS, right after connect */
	ST_STARTTLS,  /* upgrade of an established plaintext connection */
	ST_UP,
	ST_DEAD, /* failed or closed by the server; waits for conn_free */
};

struct conn {
	uv_loop_t *loop;
	const struct conn_handler *h; /* borrowed */
	void *ctx;
	char *host, *ca_file, *fingerprint, *name;
	int port;
	enum tls_mode tls_mode;
	unsigned connect_timeout_ms, io_timeout_ms;
	enum conn_state state;
	bool freed;    /* conn_free ran: no more callbacks, release when idle */
	unsigned busy; /* open handles and requests in flight that hold c */

	uv_getaddrinfo_t gai;
	bool resolving; /* gai in flight */
	struct addrinfo *addrs, *next_addr;
	uv_tcp_t *tcp; /* one per connect attempt, freed by its close callback */
	uv_connect_t connect_req;
	struct err last_err; /* why the latest address failed */

	uv_timer_t timer; /* connect, handshake and I/O timeouts */
	unsigned timer_ms;
	uv_timer_t defer; /* delivers failures found inside conn_* calls */
	struct err deferred;
	int deferred_rc;

	struct tls *tls;
	void (*tls_cb)(void *ctx, int status, const struct err *err);

	struct buf in;	     /* plaintext the consumer has not taken yet */
	size_t input_limit;
	struct buf out;	     /* bytes for the wire, not yet handed to libuv */
	struct buf inflight; /* bytes of the one uv_write in progress */
	uv_write_t write_req;
	bool writing, want_drain;
	char rbuf[65536];
	char plain[65536];
};

static void release_if_idle(struct conn *c)
{
	if (!c->freed || c->busy)
		return;
	if (c->addrs)
		uv_freeaddrinfo(c->addrs);
	tls_free(&c->tls);
	buf_free(&c->in);
	buf_free(&c->out);
	buf_free(&c->inflight);
	free(c->host);
	free(c->ca_file);
	free(c->fingerprint);
	free(c->name);
	free(c);
}

static void on_handle_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	c->busy--;
	release_if_idle(c);
}

static void on_tcp_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	free(h);
	c->busy--;
	release_if_idle(c);
}

static void close_tcp(struct conn *c)
{
	if (!c->tcp)
		return;
	uv_close((uv_handle_t *)c->tcp, on_tcp_closed);
	c->tcp = NULL;
}

/* Sets or clears the single timer; any progress restarts it. */
static void arm_timer(struct conn *c, unsigned ms);

static void stop_io(struct conn *c)
{
	c->state = ST_DEAD;
	uv_timer_stop(&c->timer);
	if (c->tcp)
		uv_read_stop((uv_stream_t *)c->tcp);
}

/* The connection could not be made (or upgraded): tell whoever waits. */
static void fail_setup(struct conn *c, int rc, const struct err *err)
{
	enum conn_state was = c->state;
	stop_io(c);
	close_tcp(c);
	if (was == ST_STARTTLS) {
		if (c->tls_cb)
			c->tls_cb(c->ctx, rc, err);
	} else {
		c->h->connected(c->ctx, rc, err);
	}
}

/* The established connection ended. */
static void die(struct conn *c, const struct err *err)
{
	if (c->state == ST_DEAD)
		return;
	if (c->state != ST_UP) {
		fail_setup(c, -EPROTO, err);
		return;
	}
	stop_io(c);
	if (c->h->closed)
		c->h->closed(c->ctx, err);
}

static void on_deferred(uv_timer_t *t)
{
	struct conn *c = t->data;
	fail_setup(c, c->deferred_rc, &c->deferred);
}

static void defer_failure(struct conn *c, int rc)
{
	c->deferred_rc = rc;
	uv_timer_start(&c->defer, on_deferred, 0, 0);
}

static void on_timeout(uv_timer_t *t)
{
	struct conn *c = t->data;
	struct err e;
	unsigned s = (c->timer_ms + 999) / 1000;
	if (c->state == ST_UP)
		err_set(&e, UV_ETIMEDOUT, ERR_TEMP, "%s: no answer from the server for %u s", c->name,
			s);
	else
		err_set(&e, UV_ETIMEDOUT, ERR_TEMP, "%s: timed out after %u s %s", c->name, s,
			c->state == ST_RESOLVING	? "resolving the name"
			: c->state == ST_CONNECTING ? "connecting"
						    : "in the TLS handshake");
	if (c->state == ST_UP)
		die(c, &e);
	else
		fail_setup(c, UV_ETIMEDOUT, &e);
}

static void arm_timer(struct conn *c, unsigned ms)
{
	c->timer_ms = ms;
	if (ms)
		uv_timer_start(&c->timer, on_timeout, ms, 0);
	else
		uv_timer_stop(&c->timer);
}

static void on_write(uv_write_t *req, int status);

static void kick_write(struct conn *c)
{
	if (c->writing || c->out.len == 0 || !c->tcp || c->state == ST_DEAD)
		return;
	struct buf t = c->inflight;
	c->inflight = c->out;
	c->out = t;
	buf_reset(&c->out);
	uv_buf_t b = uv_buf_init(c->inflight.data, (unsigned)c->inflight.len);
	int rc = uv_write(&c->write_req, (uv_stream_t *)c->tcp, &b, 1, on_write);
	if (rc < 0) {
		struct err e;
		err_set(&e, rc, ERR_TEMP, "%s: write: %s", c->name, uv_strerror(rc));
		die(c, &e);
		return;
	}
	c->writing = true;
	c->busy++;
}

static void on_write(uv_write_t *req, int status)
{
	struct conn *c = req->data;
	c->writing = false;
	c->busy--;
	if (c->freed) {
		release_if_idle(c);
		return;
	}
	if (status < 0) {
		struct err e;
		err_set(&e, status, ERR_TEMP, "%s: write: %s", c->name, uv_strerror(status));
		die(c, &e);
		return;
	}
	buf_reset(&c->inflight);
	if (c->state == ST_UP)
		arm_timer(c, c->io_timeout_ms);
	kick_write(c);
	if (c->want_drain && conn_queued(c) < CONN_WRITE_LOW_WATER) {
		c->want_drain = false;
		if (c->h->drained)
			c->h->drained(c->ctx);
	}
}

static void flush_tls(struct conn *c)
{
	tls_take_output(c->tls, &c->out);
	kick_write(c);
}

static const char injection_msg[] = "%s: the server sent data before the TLS handshake (a "
				    "STARTTLS injection attempt or a broken server)";

/* Hands plaintext to the consumer; it may take part now and the rest later. */
static void deliver(struct conn *c, const char *p, size_t n)
{
	if (c->in.len == 0) {
		size_t used = c->h->data(c->ctx, p, n);
		if (!c->freed && c->state != ST_DEAD && used < n)
			buf_append(&c->in, p + used, n - used);
	} else {
		buf_append(&c->in, p, n);
		size_t used = c->h->data(c->ctx, c->in.data, c->in.len);
		if (!c->freed && c->state != ST_DEAD)
			buf_consume(&c->in, used);
	}
	if (c->freed || c->state == ST_DEAD)
		return;
	struct err e;
	if (c->state == ST_STARTTLS && c->in.len > 0) {
		/* The consumer asked for TLS while plaintext was still unread. */
		err_set(&e, -EPROTO, ERR_PERM, injection_msg, c->name);
		fail_setup(c, -EPROTO, &e);
	} else if (c->in.len > c->input_limit) {
		err_set(&e, -EMSGSIZE, ERR_PERM, "%s: the server sent a line longer than %zu bytes",
			c->name, c->input_limit);
		die(c, &e);
	}
}

static void handshake_done(struct conn *c)
{
	bool upgrade = c->state == ST_STARTTLS;
	c->state = ST_UP;
	arm_timer(c, c->io_timeout_ms);
	log_debug("conn=%s event=tls %s", c->name, tls_describe(c->tls));
	if (upgrade)
		c->tls_cb(c->ctx, 0, NULL);
	else
		c->h->connected(c->ctx, 0, NULL);
}

static void read_tls(struct conn *c, const char *p, size_t n)
{
	struct err e;
	tls_feed(c->tls, p, n);
	if (c->state == ST_HANDSHAKE || c->state == ST_STARTTLS) {
		int rc = tls_handshake(c->tls, &e);
		flush_tls(c);
		if (rc < 0) {
			fail_setup(c, rc, &e);
			return;
		}
		if (rc == 0)
			return;
		handshake_done(c);
	}
	while (!c->freed && c->state == ST_UP) {
		int got = tls_read(c->tls, c->plain, sizeof(c->plain), &e);
		flush_tls(c); /* TLS 1.3 may answer key updates */
		if (got == 0)
			return;
		if (got < 0) {
			if (got == UV_EOF)
				err_set(&e, UV_EOF, ERR_TEMP, "%s: the server closed the connection",
					c->name);
			die(c, &e);
			return;
		}
		deliver(c, c->plain, (size_t)got);
	}
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct conn *c = h->data;
	(void)suggested;
	*b = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct conn *c = s->data;
	if (c->freed || nread == 0)
		return;
	if (nread < 0) {
		struct err e;
		const char *when = c->state == ST_HANDSHAKE || c->state == ST_STARTTLS
					   ? " during the TLS handshake"
					   : "";
		if (nread == UV_EOF)
			err_set(&e, UV_EOF, ERR_TEMP, "%s: the server closed the connection%s",
				c->name, when);
		else if (nread == UV_ECONNRESET)
			err_set(&e, UV_ECONNRESET, ERR_TEMP, "%s: the server reset the connection%s",
				c->name, when);
		else
			err_set(&e, (int)nread, ERR_TEMP, "%s: read: %s%s", c->name,
				uv_strerror((int)nread), when);
		die(c, &e);
		return;
	}
	if (c->state == ST_UP)
		arm_timer(c, c->io_timeout_ms);
	if (c->tls)
		read_tls(c, b->base, (size_t)nread);
	else
		deliver(c, b->base, (size_t)nread);
}

/* Creates the TLS session and sends the ClientHello. */
static int begin_tls(struct conn *c, struct err *e)
{
	c->tls = tls_new(c->host, c->name, c->ca_file, c->fingerprint, e);
	if (!c->tls)
		return -EINVAL;
	arm_timer(c, c->connect_timeout_ms);
	int rc = tls_handshake(c->tls, e);
	flush_tls(c);
	return rc < 0 ? rc : 0;
}

static void try_next_address(struct conn *c);

static void on_connect(uv_connect_t *req, int status)
{
	struct conn *c = req->data;
	c->busy--;
	if (c->freed) {
		release_if_idle(c);
		return;
	}
	if (status < 0) {
		err_set(&c->last_err, status, ERR_TEMP, "%s: connect: %s", c->name,
			uv_strerror(status));
		close_tcp(c);
		try_next_address(c);
		return;
	}
	uv_tcp_nodelay(c->tcp, 1);
	uv_tcp_keepalive(c->tcp, 1, 60);
	uv_read_start((uv_stream_t *)c->tcp, on_alloc, on_read);
	if (c->tls_mode != TLS_IMPLICIT) {
		c->state = ST_UP;
		arm_timer(c, c->io_timeout_ms);
		c->h->connected(c->ctx, 0, NULL);
		return;
	}
	c->state = ST_HANDSHAKE;
	struct err e;
	int rc = begin_tls(c, &e);
	if (rc < 0)
		fail_setup(c, rc, &e);
}

static void try_next_address(struct conn *c)
{
	while (c->next_addr) {
		struct addrinfo *ai = c->next_addr;
		c->next_addr = ai->ai_next;
		c->tcp = xcalloc(1, sizeof(*c->tcp));
		uv_tcp_init(c->loop, c->tcp);
		c->tcp->data = c;
		c->busy++;
		c->connect_req.data = c;
		int rc = uv_tcp_connect(&c->connect_req, c->tcp, ai->ai_addr, on_connect);
		if (rc == 0) {
			c->busy++;
			return;
		}
		err_set(&c->last_err, rc, ERR_TEMP, "%s: connect: %s", c->name, uv_strerror(rc));
		close_tcp(c);
	}
	fail_setup(c, -ECONNREFUSED, &c->last_err);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct conn *c = req->data;
	c->busy--;
	c->resolving = false;
	if (c->freed) {
		if (res)
			uv_freeaddrinfo(res);
		release_if_idle(c);
		return;
	}
	if (status < 0) {
		struct err e;
		err_set(&e, status, ERR_TEMP, "%s: cannot resolve %s: %s", c->name, c->host,
			uv_strerror(status));
		fail_setup(c, status, &e);
		return;
	}
	c->addrs = c->next_addr = res;
	c->state = ST_CONNECTING;
	err_set(&c->last_err, -ECONNREFUSED, ERR_TEMP, "%s: no address to connect to", c->name);
	try_next_address(c);
}

struct conn *conn_new(uv_loop_t *loop, const struct conn_opts *o, const struct conn_handler *h,
		      void *ctx)
{
	struct conn *c = xcalloc(1, sizeof(*c));
	c->loop = loop;
	c->h = h;
	c->ctx = ctx;
	c->host = xstrdup(o->host);
	c->port = o->port;
	c->ca_file = o->ca_file ? xstrdup(o->ca_file) : NULL;
	c->fingerprint = o->fingerprint ? xstrdup(o->fingerprint) : NULL;
	c->tls_mode = o->tls;
	c->connect_timeout_ms = o->connect_timeout_ms;
	c->io_timeout_ms = o->io_timeout_ms;
	c->input_limit = 1024 * 1024;
	/* IPv6 literals read better in brackets: [::1]:993 */
	c->name = xasprintf(strchr(o->host, ':') ? "[%s]:%d" : "%s:%d", o->host, o->port);
	uv_timer_init(loop, &c->timer);
	uv_timer_init(loop, &c->defer);
	c->timer.data = c->defer.data = c->gai.data = c->write_req.data = c;
	c->busy = 2;
	return c;
}

struct conn *conn_new_for_server(uv_loop_t *loop, const struct server_conf *sc,
				 const struct conn_handler *h, void *ctx)
{
	struct conn_opts o = {
		.host = sc->host,
		.port = sc->port,
		.tls = sc->tls,
		.ca_file = sc->ca_file,
		.fingerprint = sc->fingerprint,
		.connect_timeout_ms = (unsigned)sc->timeout * 1000,
		.io_timeout_ms = (unsigned)sc->timeout * 1000,
	};
	return conn_new(loop, &o, h, ctx);
}

void conn_start(struct conn *c)
{
	BUG_ON(c->state != ST_NEW);
	char port[16];
	snprintf(port, sizeof(port), "%d", c->port);
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	c->state = ST_RESOLVING;
	arm_timer(c, c->connect_timeout_ms);
	int rc = uv_getaddrinfo(c->loop, &c->gai, on_resolved, c->host, port, &hints);
	if (rc < 0) {
		err_set(&c->deferred, rc, ERR_TEMP, "%s: cannot resolve %s: %s", c->name, c->host,
			uv_strerror(rc));
		defer_failure(c, rc);
		return;
	}
	c->resolving = true;
	c->busy++;
}

void conn_start_tls(struct conn *c, void (*cb)(void *ctx, int status, const struct err *err))
{
	BUG_ON(c->state != ST_UP || c->tls);
	c->tls_cb = cb;
	c->state = ST_STARTTLS;
	if (c->in.len > 0) {
		err_set(&c->deferred, -EPROTO, ERR_PERM, injection_msg, c->name);
		defer_failure(c, -EPROTO);
		return;
	}
	int rc = begin_tls(c, &c->deferred);
	if (rc < 0)
		defer_failure(c, rc);
}

bool conn_write(struct conn *c, const void *p, size_t n)
{
	if (c->state == ST_DEAD || c->freed)
		return false;
	BUG_ON(c->state != ST_UP);
	if (c->tls) {
		struct err e;
		if (tls_write(c->tls, p, n, &e) < 0) {
			die(c, &e);
			return false;
		}
		tls_take_output(c->tls, &c->out);
	} else {
		buf_append(&c->out, p, n);
	}
	kick_write(c);
	if (conn_queued(c) < CONN_WRITE_HIGH_WATER)
		return true;
	c->want_drain = true;
	return false;
}

size_t conn_queued(const struct conn *c)
{
	return c->out.len + c->inflight.len;
}

void conn_set_timeout(struct conn *c, unsigned ms)
{
	c->io_timeout_ms = ms;
	if (c->state == ST_UP)
		arm_timer(c, ms);
}

void conn_set_input_limit(struct conn *c, size_t bytes)
{
	c->input_limit = bytes;
}

const char *conn_name(const struct conn *c)
{
	return c->name;
}

void conn_verr(struct err *e, const struct conn *c, enum err_class cls, const char *fmt, va_list ap)
{
	char *what = NULL;
	if (vasprintf(&what, fmt, ap) < 0)
		BUG("out of memory");
	err_set(e, -EPROTO, cls, "%s: %s", c->name, what);
	free(what);
}

bool conn_is_tls(const struct conn *c)
{
	return c->tls != NULL && c->state == ST_UP;
}

const char *conn_security(const struct conn *c)
{
	return conn_is_tls(c) ? tls_describe(c->tls) : "plaintext";
}

void conn_free(struct conn **cp)
{
	struct conn *c = *cp;
	if (!c)
		return;
	*cp = NULL;
	c->freed = true;
	if (c->resolving)
		uv_cancel((uv_req_t *)&c->gai);
	close_tcp(c);
	uv_close((uv_handle_t *)&c->timer, on_handle_closed);
	uv_close((uv_handle_t *)&c->defer, on_handle_closed);
}
