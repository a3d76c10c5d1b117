/* Fetching a password on the loop. A configured password is handed over from
 * a 0 ms timer, so callers see one behaviour whatever the config says. A
 * password_command runs as /bin/sh -c CMD in its own process group (a
 * session, through UV_PROCESS_DETACHED), so a timeout or a cancel can kill
 * everything it started. Its stdout's first line is the secret.
 *
 * Lifetime: the request owns a timer, and for a command two pipes and the
 * process handle. It is freed in the last close callback, after the user's
 * callback (or a cancel). The process handle is only closed once its exit
 * was seen: closing it earlier would leave an unreaped zombie. Every buffer
 * that held the secret is wiped before it is freed. */
#include "config/secret.h"

#include "core/xalloc.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
	OUT_MAX = 8192,      /* bytes of stdout looked at */
	ERR_KEEP = 512,      /* bytes of stderr kept for the message */
	ERR_SHOWN = 200,     /* characters of its first line shown */
	EXIT_GRACE_MS = 200, /* after exit, how long a grandchild may hold the pipes */
};

struct secret_req {
	uv_loop_t *loop;
	secret_cb cb;
	void *ctx;
	char *host;     /* names the server in messages */
	char *password; /* the configured password, copied */
	unsigned timeout_ms;
	uv_timer_t timer; /* delivery, then the command's timeout and exit grace */
	uv_process_t proc;
	uv_pipe_t out, err;
	bool command; /* proc, out and err were initialised */
	bool spawned, exited, out_eof, err_eof;
	bool timed_out, cancelled, done;
	int64_t status;
	int term_signal;
	int closing; /* close callbacks still to come */
	struct err fail;
	size_t out_len, err_len;
	bool out_over; /* stdout went on past OUT_MAX */
	char out_buf[OUT_MAX + 1];
	char err_buf[ERR_KEEP + 1];
	char scratch[4096];
};

static void on_close(uv_handle_t *h)
{
	struct secret_req *req = h->data;
	if (--req->closing > 0)
		return;
	xfree_secret(&req->password);
	free(req->host);
	explicit_bzero(req, sizeof(*req));
	free(req);
}

static void close_all(struct secret_req *req)
{
	req->closing = req->command ? 4 : 1;
	uv_close((uv_handle_t *)&req->timer, on_close);
	if (!req->command)
		return;
	uv_close((uv_handle_t *)&req->out, on_close);
	uv_close((uv_handle_t *)&req->err, on_close);
	uv_close((uv_handle_t *)&req->proc, on_close);
}

/* Runs the callback unless cancelled, then tears the request down. */
static void deliver(struct secret_req *req, const char *secret, const struct err *err)
{
	req->done = true;
	if (!req->cancelled)
		req->cb(req->ctx, secret, err);
	close_all(req);
}

static void on_inline(uv_timer_t *t)
{
	struct secret_req *req = t->data;
	deliver(req, req->password, NULL);
}

static void on_fail(uv_timer_t *t)
{
	struct secret_req *req = t->data;
	deliver(req, NULL, &req->fail);
}

/* The first line of stderr, made safe for a one-line message. */
static void stderr_line(const struct secret_req *req, char *out, size_t n)
{
	size_t len = strcspn(req->err_buf, "\r\n"), o = 0;
	if (len > ERR_SHOWN)
		len = ERR_SHOWN;
	for (size_t i = 0; i < len && o + 1 < n; i++) {
		unsigned char c = (unsigned char)req->err_buf[i];
		out[o++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	out[o] = '\0';
}

static void fail(struct secret_req *req, const char *what)
{
	char line[ERR_SHOWN + 1];
	stderr_line(req, line, sizeof(line));
	err_set(&req->fail, -EINVAL, ERR_CONFIG, "password_command for %s: %s%s%s", req->host, what,
		line[0] ? ": " : "", line);
	deliver(req, NULL, &req->fail);
}

/* The first line of stdout, NUL-terminated in place; NULL if there is none
 * (what then says why). */
static const char *first_line(struct secret_req *req, const char **what)
{
	char *nl = memchr(req->out_buf, '\n', req->out_len);
	if (!nl && req->out_over) {
		*what = "the first line of its output is over 8 KiB";
		return NULL;
	}
	size_t len = nl ? (size_t)(nl - req->out_buf) : req->out_len;
	if (len > 0 && req->out_buf[len - 1] == '\r')
		len--;
	if (len == 0) {
		*what = "printed nothing on stdout";
		return NULL;
	}
	req->out_buf[len] = '\0';
	return req->out_buf;
}

/* The command is over (and its pipes drained or given up on): judge it. */
static void finish_command(struct secret_req *req)
{
	char what[128];
	const char *secret = NULL, *why = what;
	if (req->cancelled) {
		deliver(req, NULL, NULL);
		return;
	}
	if (req->timed_out) {
		err_set(&req->fail, -ETIMEDOUT, ERR_TEMP,
			"password_command for %s: timed out after %g s", req->host,
			req->timeout_ms / 1000.0);
		deliver(req, NULL, &req->fail);
		return;
	}
	if (req->term_signal)
		snprintf(what, sizeof(what), "killed by signal %d (%s)", req->term_signal,
			 strsignal(req->term_signal));
	else if (req->status != 0)
		snprintf(what, sizeof(what), "exited with status %lld", (long long)req->status);
	else
		secret = first_line(req, &why);
	if (secret)
		deliver(req, secret, NULL);
	else
		fail(req, why);
}

static void maybe_finish(struct secret_req *req)
{
	if (!req->exited)
		return;
	if (req->cancelled || req->timed_out || (req->out_eof && req->err_eof))
		finish_command(req);
}

static void on_timer(uv_timer_t *t)
{
	struct secret_req *req = t->data;
	if (req->exited) {
		/* The exit grace ran out: something the command started keeps
		 * its output open. What arrived so far is all there is. */
		finish_command(req);
		return;
	}
	req->timed_out = true;
	kill(-req->proc.pid, SIGKILL); /* the exit callback finishes */
}

static void on_child_exit(uv_process_t *p, int64_t status, int term_signal)
{
	struct secret_req *req = p->data;
	req->exited = true;
	req->status = status;
	req->term_signal = term_signal;
	if (!req->cancelled && !req->timed_out && !(req->out_eof && req->err_eof))
		uv_timer_start(&req->timer, on_timer, EXIT_GRACE_MS, 0);
	maybe_finish(req);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct secret_req *req = h->data;
	(void)suggested;
	if (h == (uv_handle_t *)&req->out && req->out_len < OUT_MAX)
		*buf = uv_buf_init(req->out_buf + req->out_len, (unsigned)(OUT_MAX - req->out_len));
	else
		*buf = uv_buf_init(req->scratch, sizeof(req->scratch));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct secret_req *req = s->data;
	bool is_out = s == (uv_stream_t *)&req->out;
	if (n > 0 && is_out && buf->base != req->scratch)
		req->out_len += (size_t)n;
	else if (n > 0 && is_out)
		req->out_over = true;
	else if (n > 0 && req->err_len < ERR_KEEP) {
		size_t k =
		    (size_t)n < ERR_KEEP - req->err_len ? (size_t)n : ERR_KEEP - req->err_len;
		memcpy(req->err_buf + req->err_len, buf->base, k);
		req->err_len += k;
	}
	if (n > 0 && buf->base == req->scratch)
		explicit_bzero(req->scratch, (size_t)n);
	if (n >= 0)
		return;
	uv_read_stop(s);
	*(is_out ? &req->out_eof : &req->err_eof) = true;
	if (req->exited && req->out_eof && req->err_eof)
		finish_command(req);
}

static void start_command(struct secret_req *req, const char *cmd)
{
	char *args[] = { "sh", "-c", (char *)cmd, NULL };
	uv_stdio_container_t stdio[3] = {
		{ .flags = UV_IGNORE },
		{ .flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE,
		  .data.stream = (uv_stream_t *)&req->out },
		{ .flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE,
		  .data.stream = (uv_stream_t *)&req->err },
	};
	uv_process_options_t opts = {
		.exit_cb = on_child_exit,
		.file = "/bin/sh",
		.args = args,
		.flags = UV_PROCESS_DETACHED,
		.stdio_count = 3,
		.stdio = stdio,
	};
	req->command = true;
	uv_pipe_init(req->loop, &req->out, 0);
	uv_pipe_init(req->loop, &req->err, 0);
	req->out.data = req->err.data = req->proc.data = req;
	int rc = uv_spawn(req->loop, &req->proc, &opts);
	if (rc < 0) {
		err_set(&req->fail, rc, ERR_LOCAL,
			"password_command for %s: cannot run /bin/sh: %s", req->host,
			uv_strerror(rc));
		uv_timer_start(&req->timer, on_fail, 0, 0);
		return;
	}
	req->spawned = true;
	req->out_eof = uv_read_start((uv_stream_t *)&req->out, on_alloc, on_read) < 0;
	req->err_eof = uv_read_start((uv_stream_t *)&req->err, on_alloc, on_read) < 0;
	if (req->timeout_ms)
		uv_timer_start(&req->timer, on_timer, req->timeout_ms, 0);
}

struct secret_req *secret_fetch(uv_loop_t *loop, const struct server_conf *sc, unsigned timeout_ms,
				secret_cb cb, void *ctx)
{
	struct secret_req *req = xcalloc(1, sizeof(*req));
	req->loop = loop;
	req->cb = cb;
	req->ctx = ctx;
	req->timeout_ms = timeout_ms;
	req->host = xstrdup(sc->host ? sc->host : "(no host)");
	uv_timer_init(loop, &req->timer);
	req->timer.data = req;
	if (sc->password) {
		req->password = xstrdup(sc->password);
		uv_timer_start(&req->timer, on_inline, 0, 0);
	} else if (sc->password_command) {
		start_command(req, sc->password_command);
	} else {
		err_set(&req->fail, -EINVAL, ERR_CONFIG,
			"%s: neither password nor password_command "
			"is set",
			req->host);
		uv_timer_start(&req->timer, on_fail, 0, 0);
	}
	return req;
}

void secret_cancel(struct secret_req *req)
{
	if (!req || req->done || req->cancelled)
		return;
	req->cancelled = true;
	if (req->spawned && !req->exited) {
		/* Wait for the exit before closing the process handle. */
		uv_timer_stop(&req->timer);
		kill(-req->proc.pid, SIGKILL);
		return;
	}
	req->done = true;
	close_all(req);
}
