/* The network layer against a small TLS server in a thread of this test
 * (OpenSSL, blocking sockets). Certificates come from the openssl command in
 * a temporary directory: a CA, a server certificate it signed, a self-signed
 * one, and one for another name. */
#include "check.h"
#include "core/buf.h"
#include "core/xalloc.h"
#include "net/conn.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>

static char dir[] = "/tmp/mf-test-net-XXXXXX";

/* ---- the server side ---- */

enum cert_kind { CERT_CA_SIGNED, CERT_SELF_SIGNED, CERT_OTHER_NAME };

struct server {
	int lfd, port;
	enum cert_kind cert;
	bool tls;	    /* implicit TLS */
	bool starttls;	    /* plaintext greeting, then TLS */
	bool inject;	    /* send extra plaintext right after the greeting */
	bool silent;	    /* accept, never speak */
	bool close_at_once; /* accept and close */
	size_t flood;	    /* send this many bytes with no newline */
	size_t sink_bytes;  /* read this many bytes slowly, then report */
	size_t got;	    /* what the server read, for checks */
	pthread_t thread;
};

static SSL_CTX *server_ctx(enum cert_kind kind)
{
	static const char *names[] = { "server", "self", "other" };
	char crt[256], key[256];
	snprintf(crt, sizeof(crt), "%s/%s.crt", dir, names[kind]);
	snprintf(key, sizeof(key), "%s/%s.key", dir, names[kind]);
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (SSL_CTX_use_certificate_file(ctx, crt, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
		BUG("cannot load %s", crt);
	return ctx;
}

static void io_write(SSL *ssl, int fd, const char *p, size_t n)
{
	if (ssl)
		SSL_write(ssl, p, (int)n);
	else if (write(fd, p, n) < 0)
		return;
}

static ssize_t io_read(SSL *ssl, int fd, char *p, size_t n)
{
	return ssl ? SSL_read(ssl, p, (int)n) : read(fd, p, n);
}

static void *serve(void *arg)
{
	struct server *s = arg;
	int fd = accept(s->lfd, NULL, NULL);
	if (fd < 0)
		return NULL;
	SSL_CTX *ctx = NULL;
	SSL *ssl = NULL;
	char buf[65536];
	if (s->close_at_once || s->silent) {
		if (s->silent)
			while (read(fd, buf, sizeof(buf)) > 0)
				;
		close(fd);
		return NULL;
	}
	if (s->starttls) {
		const char *g = s->inject ? "ready\r\nINJECTED\r\n" : "ready\r\n";
		io_write(NULL, fd, g, strlen(g));
	}
	if (s->tls || s->starttls) {
		ctx = server_ctx(s->cert);
		ssl = SSL_new(ctx);
		SSL_set_fd(ssl, fd);
		if (SSL_accept(ssl) != 1)
			goto out;
	}
	io_write(ssl, fd, "hello\r\n", 7);
	if (s->flood) {
		memset(buf, 'x', sizeof(buf));
		for (size_t sent = 0; sent < s->flood; sent += sizeof(buf))
			io_write(ssl, fd, buf, sizeof(buf));
	}
	ssize_t n;
	while ((n = io_read(ssl, fd, buf, sizeof(buf))) > 0) {
		s->got += (size_t)n;
		if (s->sink_bytes) {
			usleep(2000); /* a slow reader, so the client's queue fills */
			if (s->got >= s->sink_bytes)
				io_write(ssl, fd, "done\r\n", 6);
		} else {
			io_write(ssl, fd, buf, (size_t)n); /* echo */
		}
	}
out:
	if (ssl)
		SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	return NULL;
}

static void server_start(struct server *s)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (bind(s->lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s->lfd, 4) < 0)
		BUG("cannot listen");
	getsockname(s->lfd, (struct sockaddr *)&a, &len);
	s->port = ntohs(a.sin_port);
	pthread_create(&s->thread, NULL, serve, s);
}

static void server_stop(struct server *s)
{
	shutdown(s->lfd, SHUT_RDWR);
	pthread_join(s->thread, NULL);
	close(s->lfd);
}

/* ---- the client side ---- */

struct client {
	uv_loop_t loop;
	struct conn *c;
	int status;
	bool connected, closed, starttls_on_ready, drained;
	struct err err;
	struct buf got;
	char text[64]; /* the start of what was received, kept after the run */
	bool consume_nothing;
	size_t write_total; /* stream this many bytes once connected */
	size_t written;
	bool stop_on_done;
};

static void fill(struct client *cl);

static void on_tls_up(void *ctx, int status, const struct err *err)
{
	struct client *cl = ctx;
	cl->status = status;
	if (status < 0) {
		cl->err = *err;
		uv_stop(&cl->loop);
		return;
	}
	conn_write(cl->c, "ping\r\n", 6);
}

static size_t on_data(void *ctx, const char *p, size_t len)
{
	struct client *cl = ctx;
	if (cl->consume_nothing)
		return 0;
	if (cl->starttls_on_ready) {
		if (len < 7)
			return 0;
		/* consume only the reply line, as a protocol client does */
		cl->starttls_on_ready = false;
		conn_start_tls(cl->c, on_tls_up);
		return 7;
	}
	buf_append(&cl->got, p, len);
	if (strstr(buf_str(&cl->got), "ping\r\n") || strstr(buf_str(&cl->got), "done\r\n"))
		uv_stop(&cl->loop);
	return len;
}

static void on_connected(void *ctx, int status, const struct err *err)
{
	struct client *cl = ctx;
	cl->status = status;
	cl->connected = status == 0;
	if (status < 0) {
		cl->err = *err;
		uv_stop(&cl->loop);
		return;
	}
	if (cl->write_total)
		fill(cl);
	else if (!cl->starttls_on_ready && !cl->consume_nothing)
		conn_write(cl->c, "ping\r\n", 6);
}

static void on_closed(void *ctx, const struct err *err)
{
	struct client *cl = ctx;
	cl->closed = true;
	cl->err = *err;
	uv_stop(&cl->loop);
}

static void fill(struct client *cl)
{
	static char chunk[32768];
	while (cl->written < cl->write_total) {
		size_t n = cl->write_total - cl->written;
		n = n < sizeof(chunk) ? n : sizeof(chunk);
		cl->written += n;
		if (!conn_write(cl->c, chunk, n))
			return;
	}
}

static void on_drained(void *ctx)
{
	struct client *cl = ctx;
	cl->drained = true;
	fill(cl);
}

static const struct conn_handler handler = { on_connected, on_data, on_closed, on_drained };

static char *path_of(const char *name)
{
	return xasprintf("%s/%s", dir, name);
}

/* Runs one client against the server until it stops or 10 s pass. */
static void run(struct client *cl, const char *host, int port, enum tls_mode tls,
		const char *ca_name, const char *fingerprint, unsigned timeout_ms)
{
	char *ca = ca_name ? path_of(ca_name) : NULL;
	struct conn_opts o = { .host = host,
			       .port = port,
			       .tls = tls,
			       .ca_file = ca,
			       .fingerprint = fingerprint,
			       .connect_timeout_ms = timeout_ms,
			       .io_timeout_ms = timeout_ms };
	uv_loop_init(&cl->loop);
	cl->c = conn_new(&cl->loop, &o, &handler, cl);
	conn_start(cl->c);
	uv_run(&cl->loop, UV_RUN_DEFAULT);
	conn_free(&cl->c);
	uv_run(&cl->loop, UV_RUN_DEFAULT); /* let the handles close */
	CHECK_INT(uv_loop_close(&cl->loop), 0);
	snprintf(cl->text, sizeof(cl->text), "%s", buf_str(&cl->got));
	buf_free(&cl->got);
	free(ca);
}

static bool contains(const char *hay, const char *needle)
{
	if (!strstr(hay, needle)) {
		fprintf(stderr, "  \"%s\" does not contain \"%s\"\n", hay, needle);
		return false;
	}
	return true;
}

static void test_refused(void)
{
	struct server s = { .close_at_once = true };
	server_start(&s);
	int port = s.port;
	server_stop(&s); /* nothing listens there any more */
	struct client cl = { 0 };
	run(&cl, "127.0.0.1", port, TLS_NONE, NULL, NULL, 2000);
	CHECK(cl.status < 0);
	CHECK(contains(cl.err.msg, "connect: connection refused"));
	CHECK(cl.err.cls == ERR_TEMP);
}

static void test_unresolvable(void)
{
	struct client cl = { 0 };
	run(&cl, "no-such-host.invalid", 993, TLS_IMPLICIT, NULL, NULL, 5000);
	CHECK(cl.status < 0);
	CHECK(contains(cl.err.msg, "no-such-host.invalid:993: cannot resolve no-such-host.invalid"));
}

static void test_tls_ok(void)
{
	struct server s = { .tls = true };
	server_start(&s);
	struct client cl = { 0 };
	run(&cl, "127.0.0.1", s.port, TLS_IMPLICIT, "ca.crt", NULL, 5000);
	server_stop(&s);
	CHECK_INT(cl.status, 0);
	CHECK(cl.connected);
	CHECK(contains(cl.text, "hello\r\nping\r\n"));
}

static void test_tls_untrusted(void)
{
	struct server s = { .tls = true };
	server_start(&s);
	struct client cl = { 0 };
	run(&cl, "127.0.0.1", s.port, TLS_IMPLICIT, NULL, NULL, 5000);
	server_stop(&s);
	CHECK(cl.status < 0);
	CHECK(contains(cl.err.msg, ": certificate verify failed: unable to get local issuer"));
	CHECK(cl.err.cls == ERR_PERM);
}

static void test_tls_self_signed(void)
{
	struct server s = { .tls = true, .cert = CERT_SELF_SIGNED };
	server_start(&s);
	struct client cl = { 0 };
	char want[64];
	snprintf(want, sizeof(want), "127.0.0.1:%d: certificate verify failed: self", s.port);
	run(&cl, "127.0.0.1", s.port, TLS_IMPLICIT, NULL, NULL, 5000);
	server_stop(&s);
	CHECK(cl.status < 0);
	CHECK(contains(cl.err.msg, want));
}

static void test_tls_wrong_name(void)
{
	struct server s = { .tls = true, .cert = CERT_OTHER_NAME };
	server_start(&s);
	struct client cl = { 0 };
	run(&cl, "localhost", s.port, TLS_IMPLICIT, "ca.crt", NULL, 5000);
	server_stop(&s);
	CHECK(cl.status < 0);
	CHECK(contains(cl.err.msg, "certificate verify failed: hostname mismatch"));
}

static char *read_file_line(const char *name)
{
	char *p = path_of(name);
	FILE *f = fopen(p, "r");
	char line[256] = "";
	if (!f || !fgets(line, sizeof(line), f))
		BUG("cannot read %s", p);
	fclose(f);
	free(p);
	line[strcspn(line, "\n")] = '\0';
	return xstrdup(line);
}

static void test_fingerprint(void)
{
	char *fp = read_file_line("self.fp");
	struct server s = { .tls = true, .cert = CERT_SELF_SIGNED };
	server_start(&s);
	struct client cl = { 0 };
	run(&cl, "127.0.0.1", s.port, TLS_IMPLICIT, NULL, fp, 5000);
	server_stop(&s);
	CHECK_INT(cl.status, 0);

	struct server s2 = { .tls = true, .cert = CERT_CA_SIGNED };
	server_start(&s2);
	struct client cl2 = { 0 };
	run(&cl2, "127.0.0.1", s2.port, TLS_IMPLICIT, "ca.crt", fp, 5000);
	server_stop(&s2);
	CHECK(cl2.status < 0);
	CHECK(contains(cl2.err.msg, "certificate fingerprint mismatch: expected sha256:"));
	free(fp);
}

static void test_starttls(void)
{
	struct server s = { .starttls = true };
	server_start(&s);
	struct client cl = { .starttls_on_ready = true };
	run(&cl, "127.0.0.1", s.port, TLS_STARTTLS, "ca.crt", NULL, 5000);
	server_stop(&s);
	CHECK_INT(cl.status, 0);
	CHECK(contains(cl.text, "hello\r\nping\r\n"));
}

static void test_starttls_injection(void)
{
	struct server s = { .starttls = true, .inject = true };
	server_start(&s);
	struct client cl = { .starttls_on_ready = true };
	run(&cl, "127.0.0.1", s.port, TLS_STARTTLS, "ca.crt", NULL, 5000);
	server_stop(&s);
	CHECK(cl.status < 0);
	CHECK(contains(cl.err.msg, "sent data before the TLS handshake"));
}

static void test_handshake_timeout(void)
{
	struct server s = { .silent = true };
	server_start(&s);
	struct client cl = { 0 };
	run(&cl, "127.0.0.1", s.port, TLS_IMPLICIT, "ca.crt", NULL, 300);
	server_stop(&s);
	CHECK(cl.status == UV_ETIMEDOUT);
	CHECK(contains(cl.err.msg, "timed out after 1 s in the TLS handshake"));
}

static void test_closed_in_handshake(void)
{
	struct server s = { .close_at_once = true };
	server_start(&s);
	struct client cl = { 0 };
	run(&cl, "127.0.0.1", s.port, TLS_IMPLICIT, "ca.crt", NULL, 5000);
	server_stop(&s);
	CHECK(cl.status < 0);
	CHECK(contains(cl.err.msg, "connection during the TLS handshake"));
}

static void test_io_timeout(void)
{
	struct server s = { .tls = true };
	server_start(&s);
	struct client cl = { .consume_nothing = true };
	run(&cl, "127.0.0.1", s.port, TLS_IMPLICIT, "ca.crt", NULL, 300);
	server_stop(&s);
	CHECK(cl.closed);
	CHECK(contains(cl.err.msg, "no answer from the server for 1 s"));
}

static void test_line_too_long(void)
{
	struct server s = { .tls = true, .flood = 3 * 1024 * 1024 };
	server_start(&s);
	struct client cl = { .consume_nothing = true };
	run(&cl, "127.0.0.1", s.port, TLS_IMPLICIT, "ca.crt", NULL, 5000);
	server_stop(&s);
	CHECK(cl.closed);
	CHECK(contains(cl.err.msg, "sent a line longer than 1048576 bytes"));
}

static void test_backpressure(void)
{
	const size_t total = 16 * 1024 * 1024;
	struct server s = { .tls = true, .sink_bytes = total };
	server_start(&s);
	struct client cl = { .write_total = total };
	run(&cl, "127.0.0.1", s.port, TLS_IMPLICIT, "ca.crt", NULL, 10000);
	server_stop(&s);
	CHECK(cl.drained); /* the queue filled and the writer waited */
	CHECK_INT(cl.written, total);
	CHECK_INT(s.got, total);
}

static void test_free_while_resolving(void)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct client cl = { 0 };
	struct conn_opts o = { .host = "localhost", .port = 1, .tls = TLS_NONE };
	struct conn *c = conn_new(&loop, &o, &handler, &cl);
	conn_start(c);
	conn_free(&c);
	CHECK(c == NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK(!cl.connected && cl.status == 0); /* no callback after free */
	CHECK_INT(uv_loop_close(&loop), 0);
}

static void verr(struct err *e, const struct conn *c, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void verr(struct err *e, const struct conn *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	conn_verr(e, c, ERR_PERM, fmt, ap);
	va_end(ap);
}

/* A client's connection takes the server's config; its failures name it. */
static void test_for_server(void)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct client cl = { 0 };
	struct server_conf sc = { .host = "::1", .port = 993, .tls = TLS_IMPLICIT, .timeout = 7 };
	struct conn *c = conn_new_for_server(&loop, &sc, &handler, &cl);
	CHECK_STR(conn_name(c), "[::1]:993");
	struct err e;
	verr(&e, c, "%s refused: %d", "EHLO", 554);
	CHECK_INT(e.code, -EPROTO);
	CHECK_INT(e.cls, ERR_PERM);
	CHECK_STR(e.msg, "[::1]:993: EHLO refused: 554");
	conn_free(&c);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK_INT(uv_loop_close(&loop), 0);
}

static void make_certs(void)
{
	if (!mkdtemp(dir))
		BUG("mkdtemp");
	char *cmd = xasprintf(
		"set -e; cd %s; exec >log 2>&1;"
		"openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2"
		" -subj /CN=test-ca;"
		"gen() { openssl req -newkey rsa:2048 -nodes -keyout $1.key -out $1.csr"
		" -subj /CN=$2; printf 'subjectAltName=%%s\\n' \"$3\" > $1.ext;"
		" openssl x509 -req -in $1.csr -CA ca.crt -CAkey ca.key -CAcreateserial"
		" -out $1.crt -days 2 -extfile $1.ext; };"
		"gen server localhost DNS:localhost,IP:127.0.0.1;"
		"gen other other.example DNS:other.example;"
		"openssl req -x509 -newkey rsa:2048 -nodes -keyout self.key -out self.crt -days 2"
		" -subj /CN=self -addext subjectAltName=IP:127.0.0.1;"
		"openssl x509 -in self.crt -noout -fingerprint -sha256 | sed 's/.*=//; s/://g'"
		" | tr A-F a-f > self.fp",
		dir);
	if (system(cmd) != 0)
		BUG("cannot make test certificates; see %s/log", dir);
	free(cmd);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN); /* a peer that hung up is an error code, not a death */
	make_certs();
	RUN(test_refused);
	RUN(test_unresolvable);
	RUN(test_tls_ok);
	RUN(test_tls_untrusted);
	RUN(test_tls_self_signed);
	RUN(test_tls_wrong_name);
	RUN(test_fingerprint);
	RUN(test_starttls);
	RUN(test_starttls_injection);
	RUN(test_handshake_timeout);
	RUN(test_closed_in_handshake);
	RUN(test_io_timeout);
	RUN(test_line_too_long);
	RUN(test_backpressure);
	RUN(test_free_while_resolving);
	RUN(test_for_server);
	char *rm = xasprintf("rm -rf %s", dir);
	if (system(rm) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
	free(rm);
	CHECK_DONE();
}
