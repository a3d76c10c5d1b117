/* One client connection to a server: DNS, TCP, optional TLS (implicit or
 * STARTTLS) with OpenSSL over memory BIOs, timeouts, a write queue with
 * backpressure. Protocol clients (imap/, pop3/, smtp/) sit on top; this layer
 * knows nothing about any protocol.
 *
 * Callbacks run from the loop, never from inside a conn_* call, and none runs
 * after conn_free. Errors reach the user as they are written here, so each
 * names the server ("imap.example.com:993: certificate verify failed: ..."). */
#ifndef MF_NET_CONN_H
#define MF_NET_CONN_H

#include "config/config.h"
#include "core/err.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

/* The write queue asks the writer to pause above HIGH and resumes it below LOW. */
#define CONN_WRITE_HIGH_WATER (1024 * 1024)
#define CONN_WRITE_LOW_WATER (256 * 1024)

struct conn;

struct conn_opts {
	const char *host;	 /* DNS name or address literal; the name TLS verifies */
	int port;
	enum tls_mode tls;	 /* TLS_IMPLICIT: handshake right after the TCP connect */
	const char *ca_file;	 /* trust anchors; NULL: the system store */
	const char *fingerprint; /* 64 lowercase hex digits: accept exactly this leaf certificate */
	unsigned connect_timeout_ms; /* DNS + TCP + TLS handshake */
	unsigned io_timeout_ms;	     /* initial I/O timeout; see conn_set_timeout */
};

struct conn_handler {
	/* The connection is up (with TLS, for implicit TLS), status 0; or it could
	 * not be made: status < 0 and err says why. After a failure nothing else runs. */
	void (*connected)(void *ctx, int status, const struct err *err);
	/* Plaintext arrived: p[0..len). Returns how many bytes it consumed; the rest
	 * is kept and offered again, followed by newer bytes, at the next call. */
	size_t (*data)(void *ctx, const char *p, size_t len);
	/* The connection ended by itself: the server closed it, an error, a timeout.
	 * Runs at most once. */
	void (*closed)(void *ctx, const struct err *err);
	/* Optional: a writer told to pause by conn_write may go on. */
	void (*drained)(void *ctx);
};

/* Does not start anything; h and ctx are borrowed for the connection's life,
 * o is copied. */
struct conn *conn_new(uv_loop_t *loop, const struct conn_opts *o, const struct conn_handler *h,
		      void *ctx);
/* conn_new for a protocol client of the server sc names: its host, port, TLS
 * mode and trust, and its timeout for connecting and for I/O alike. sc is
 * read during the call only. */
struct conn *conn_new_for_server(uv_loop_t *loop, const struct server_conf *sc,
				 const struct conn_handler *h, void *ctx);
/* Resolves, connects, and for implicit TLS handshakes; `connected` runs once. */
void conn_start(struct conn *c);
/* Upgrades a plaintext connection (after the protocol's STARTTLS/STLS reply).
 * cb runs once with 0 or a negative errno. Bytes the server sent after its
 * reply but before the handshake are an attack (RFC 3207 section 4.2): they
 * fail the upgrade. */
void conn_start_tls(struct conn *c, void (*cb)(void *ctx, int status, const struct err *err));
/* Queues bytes to send (copied). Returns false when the queue is above the
 * high-water mark: the writer should wait for `drained` before writing more. */
bool conn_write(struct conn *c, const void *p, size_t n);
/* Bytes queued and not yet handed to the kernel. */
size_t conn_queued(const struct conn *c);
/* Declares the connection dead when this long passes with nothing read or
 * written; 0 turns the timeout off (IDLE, a quiet NOOP interval). */
void conn_set_timeout(struct conn *c, unsigned ms);
/* Unconsumed input may grow to this many bytes before it is an error (a line
 * that never ends). Default 1 MiB. */
void conn_set_input_limit(struct conn *c, size_t bytes);
/* "host:port", for messages. */
const char *conn_name(const struct conn *c);
/* Fills e for a protocol failure on c: code -EPROTO, class cls, the message
 * "host:port: " followed by fmt formatted with ap. */
void conn_verr(struct err *e, const struct conn *c, enum err_class cls, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));
bool conn_is_tls(const struct conn *c);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384" or "plaintext". */
const char *conn_security(const struct conn *c);
/* Tears the connection down; no callback runs afterwards. NULL-safe, clears *cp. */
void conn_free(struct conn **cp);

#endif
