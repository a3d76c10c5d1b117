#include "ctl/server.h"

#include "core/log.h"
#include "core/xalloc.h"
#include "ctl/request.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* A request must be complete this soon after the connection, and the
 * client must have taken its answer this soon after it was ready. */
#define REQUEST_MS 5000
#define ANSWER_MS 30000

struct ctl_conn {
	struct ctl_server *server; /* NULL once the server stopped */
	struct ctl_conn *next;
	uv_pipe_t pipe;
	uv_timer_t timer;
	uv_write_t write;
	struct ctl_request req;
	struct buf answer;
	unsigned handles; /* open handles; the conn is freed when both closed */
	bool handled;	  /* the handler has it: wait for the reply */
	bool closing;
};

struct ctl_server {
	uv_loop_t *loop;
	uv_pipe_t pipe;
	char *path;
	ctl_handler handler;
	void *ctx;
	struct ctl_conn *conns;
};

/* A conn goes when its handles are closed and no handler still holds it. */
static void release(struct ctl_conn *c)
{
	if (c->handles > 0 || c->handled)
		return;
	ctl_request_free(&c->req);
	buf_free(&c->answer);
	free(c);
}

static void on_conn_handle_closed(uv_handle_t *h)
{
	struct ctl_conn *c = h->data;
	c->handles--;
	release(c);
}

static void unlink_conn(struct ctl_conn *c)
{
	struct ctl_server *s = c->server;
	if (!s)
		return;
	for (struct ctl_conn **pp = &s->conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	c->server = NULL;
}

static void conn_close(struct ctl_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	unlink_conn(c);
	uv_close((uv_handle_t *)&c->pipe, on_conn_handle_closed);
	uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

static void on_timeout(uv_timer_t *t)
{
	struct ctl_conn *c = t->data;
	if (!c->handled)
		conn_close(c);
}

static void on_written(uv_write_t *w, int status)
{
	(void)status;
	conn_close(w->data);
}

void ctl_conn_reply(struct ctl_conn *c, int status, const char *text)
{
	c->handled = false;
	if (c->closing) { /* the server stopped meanwhile: nobody to tell */
		release(c);
		return;
	}
	buf_printf(&c->answer, "%d\n%s", status, text ? text : "");
	uv_timer_start(&c->timer, on_timeout, ANSWER_MS, 0);
	uv_buf_t b = uv_buf_init(c->answer.data, (unsigned)c->answer.len);
	c->write.data = c;
	if (uv_write(&c->write, (uv_stream_t *)&c->pipe, &b, 1, on_written) < 0)
		conn_close(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	static char chunk[4096];
	(void)h;
	(void)suggested;
	*b = uv_buf_init(chunk, sizeof(chunk));
}

static void refuse(struct ctl_conn *c, int status, const char *why)
{
	uv_read_stop((uv_stream_t *)&c->pipe);
	ctl_conn_reply(c, status, why);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	struct ctl_conn *c = st->data;
	if (n == 0)
		return;
	if (n < 0) {
		uv_read_stop(st);
		if (!c->handled)
			conn_close(c);
		return;
	}
	enum ctl_parse res = ctl_request_feed(&c->req, b->base, (size_t)n);
	if (res == CTL_MORE)
		return;
	if (res == CTL_BAD) {
		char why[128];
		snprintf(why, sizeof(why), "mailferryd: %s\n", c->req.why);
		refuse(c, 2, why);
		return;
	}
	uv_read_stop(st);
	uv_timer_stop(&c->timer);
	c->handled = true;
	c->server->handler(c->server->ctx, c, c->req.words, c->req.nwords);
}

/* ---- accepting ---- */

static void on_server_closed(uv_handle_t *h)
{
	struct ctl_server *s = h->data;
	free(s->path);
	free(s);
}

/* Only the daemon's own user may steer it (the directory's mode says the same;
 * this holds even where a socket's own mode is not honoured). */
static bool peer_allowed(uv_pipe_t *p)
{
	uv_os_fd_t fd;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (uv_fileno((uv_handle_t *)p, &fd) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return false;
	if (cred.uid == getuid())
		return true;
	log_warn("event=ctl-refused uid=%u pid=%d: not the daemon's user", (unsigned)cred.uid,
		 (int)cred.pid);
	return false;
}

static void on_connection(uv_stream_t *listener, int status)
{
	struct ctl_server *s = listener->data;
	if (status < 0)
		return;
	struct ctl_conn *c = xcalloc(1, sizeof(*c));
	c->server = s;
	uv_pipe_init(s->loop, &c->pipe, 0);
	uv_timer_init(s->loop, &c->timer);
	c->pipe.data = c->timer.data = c;
	c->handles = 2;
	c->next = s->conns;
	s->conns = c;
	if (uv_accept(listener, (uv_stream_t *)&c->pipe) < 0) {
		conn_close(c);
		return;
	}
	if (!peer_allowed(&c->pipe)) {
		refuse(c, 1, "mailferryd: permission denied: not the daemon's user\n");
		return;
	}
	uv_timer_start(&c->timer, on_timeout, REQUEST_MS, 0);
	uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
}

/* Makes the socket's directory (mode 0700) when missing and checks that an
 * existing one is ours and closed to others. */
static int prepare_dir(const char *path, struct err *err)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			return err_set(err, -errno, ERR_LOCAL, "%s: cannot create: %s", dir,
				       strerror(errno));
		*p = '/';
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return err_set(err, -errno, ERR_LOCAL, "%s: cannot create: %s", dir, strerror(errno));
	struct stat st;
	if (stat(dir, &st) < 0)
		return err_set(err, -errno, ERR_LOCAL, "%s: %s", dir, strerror(errno));
	if (st.st_uid != getuid() || (st.st_mode & 077))
		return err_set(err, -EPERM, ERR_CONFIG,
			       "%s: the control socket's directory must belong to you and be closed "
			       "to others (chmod 700 %s)",
			       dir, dir);
	return 0;
}

/* A socket file that nothing answers on is a dead daemon's: remove it. One
 * that answers belongs to a live daemon: leave it alone. Anything else at
 * that path is not ours to remove. */
static int claim_path(const char *path, struct err *err)
{
	struct stat st;
	if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode))
		return err_set(err, -EEXIST, ERR_CONFIG,
			       "%s: exists and is not a socket; not replacing it", path);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_set(err, -errno, ERR_LOCAL, "socket: %s", strerror(errno));
	int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	int e = errno;
	close(fd);
	if (rc == 0)
		return err_set(err, -EADDRINUSE, ERR_CONFIG,
			       "another mailferryd is running with the control socket %s", path);
	if (e == ECONNREFUSED)
		unlink(path);
	return 0;
}

struct ctl_server *ctl_server_start(uv_loop_t *loop, const char *path, ctl_handler handler,
				    void *ctx, struct err *err)
{
	if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		err_set(err, -ENAMETOOLONG, ERR_CONFIG, "%s: control socket path too long", path);
		return NULL;
	}
	if (prepare_dir(path, err) < 0 || claim_path(path, err) < 0)
		return NULL;
	struct ctl_server *s = xcalloc(1, sizeof(*s));
	s->loop = loop;
	s->path = xstrdup(path);
	s->handler = handler;
	s->ctx = ctx;
	uv_pipe_init(loop, &s->pipe, 0);
	s->pipe.data = s;
	mode_t old = umask(077); /* the socket is born 0600 */
	int rc = uv_pipe_bind(&s->pipe, path);
	umask(old);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&s->pipe, 16, on_connection);
	if (rc < 0) {
		err_set(err, rc, ERR_LOCAL, "%s: cannot listen: %s", path, uv_strerror(rc));
		uv_close((uv_handle_t *)&s->pipe, on_server_closed);
		return NULL;
	}
	chmod(path, 0600);
	return s;
}

void ctl_server_stop(struct ctl_server **sp)
{
	struct ctl_server *s = *sp;
	if (!s)
		return;
	*sp = NULL;
	unlink(s->path);
	while (s->conns)
		conn_close(s->conns); /* unlinks it */
	uv_close((uv_handle_t *)&s->pipe, on_server_closed);
}
