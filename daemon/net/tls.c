#include "net/tls.h"

#include "core/xalloc.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

struct tls {
	SSL *ssl;
	BIO *rbio; /* network -> OpenSSL; owned by ssl */
	BIO *wbio; /* OpenSSL -> network; owned by ssl */
	char *label;
	char *fingerprint;
	char desc[96];
};

/* Contexts are shared by trust store: loading the system store costs time
 * and memory, and every connection of an account uses the same one. */
struct ctx_entry {
	char *ca_file; /* NULL: system store */
	SSL_CTX *ctx;
};
static struct ctx_entry *ctx_cache;
static size_t ctx_count, ctx_cap;

static void openssl_reason(char *out, size_t cap)
{
	unsigned long e = ERR_peek_last_error();
	if (e)
		ERR_error_string_n(e, out, cap);
	else
		snprintf(out, cap, "unknown error");
	ERR_clear_error();
}

/* Why a CA file did not load, in words a user can act on: the system's reason
 * when it could not be read ("No such file or directory"), that it is a
 * directory, or OpenSSL's reason ("no certificate or crl found") rather than
 * its generic wrapper "x509 certificate routines::system lib". */
static void ca_file_reason(const char *ca_file, char *out, size_t cap)
{
	unsigned long e, sys = 0, last = 0;
	while ((e = ERR_get_error()) != 0) {
		if (ERR_SYSTEM_ERROR(e) && !sys)
			sys = e;
		last = e;
	}
	struct stat st;
	const char *why = last ? ERR_reason_error_string(last) : NULL;
	if (sys)
		snprintf(out, cap, "%s", strerror(ERR_GET_REASON(sys)));
	else if (stat(ca_file, &st) == 0 && S_ISDIR(st.st_mode))
		snprintf(out, cap, "it is a directory, not a file of PEM certificates");
	else
		snprintf(out, cap, "%s", why ? why : "unknown error");
}

static SSL_CTX *context_for(const char *ca_file, const char *label, struct err *err)
{
	for (size_t i = 0; i < ctx_count; i++) {
		const char *have = ctx_cache[i].ca_file;
		if ((!have && !ca_file) || (have && ca_file && strcmp(have, ca_file) == 0))
			return ctx_cache[i].ctx;
	}
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		BUG("SSL_CTX_new failed");
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	int ok = ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
			 : SSL_CTX_set_default_verify_paths(ctx);
	if (!ok) {
		char why[256];
		if (ca_file)
			ca_file_reason(ca_file, why, sizeof(why));
		else
			openssl_reason(why, sizeof(why));
		SSL_CTX_free(ctx);
		err_set(err, -EINVAL, ERR_CONFIG, "%s: cannot load CA file %s: %s", label,
			ca_file ? ca_file : "(system store)", why);
		return NULL;
	}
	ctx_cache = xgrow(ctx_cache, &ctx_cap, ctx_count + 1, sizeof(*ctx_cache));
	ctx_cache[ctx_count++] = (struct ctx_entry){ ca_file ? xstrdup(ca_file) : NULL, ctx };
	return ctx;
}

static bool is_ip_literal(const char *host)
{
	unsigned char a[16];
	return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

struct tls *tls_new(const char *host, const char *label, const char *ca_file,
		    const char *fingerprint, struct err *err)
{
	SSL_CTX *ctx = context_for(ca_file, label, err);
	if (!ctx)
		return NULL;
	struct tls *t = xcalloc(1, sizeof(*t));
	t->ssl = SSL_new(ctx);
	t->rbio = BIO_new(BIO_s_mem());
	t->wbio = BIO_new(BIO_s_mem());
	if (!t->ssl || !t->rbio || !t->wbio)
		BUG("OpenSSL allocation failed");
	BIO_set_mem_eof_return(t->rbio, -1); /* "no data yet", not EOF */
	SSL_set_bio(t->ssl, t->rbio, t->wbio);
	SSL_set_connect_state(t->ssl);
	t->label = xstrdup(label);
	if (fingerprint) {
		/* A pin replaces the chain and the name: it is how users trust a
		 * self-signed server. It is checked once the handshake is done. */
		t->fingerprint = xstrdup(fingerprint);
		SSL_set_verify(t->ssl, SSL_VERIFY_NONE, NULL);
	} else {
		SSL_set_verify(t->ssl, SSL_VERIFY_PEER, NULL);
		X509_VERIFY_PARAM *param = SSL_get0_param(t->ssl);
		X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (is_ip_literal(host))
			X509_VERIFY_PARAM_set1_ip_asc(param, host);
		else
			SSL_set1_host(t->ssl, host);
	}
	if (!is_ip_literal(host)) /* RFC 6066 section 3: SNI carries names only */
		SSL_set_tlsext_host_name(t->ssl, host);
	return t;
}

void tls_free(struct tls **tp)
{
	struct tls *t = *tp;
	if (!t)
		return;
	SSL_free(t->ssl);
	free(t->label);
	free(t->fingerprint);
	free(t);
	*tp = NULL;
}

void tls_feed(struct tls *t, const char *p, size_t n)
{
	if (BIO_write(t->rbio, p, (int)n) != (int)n)
		BUG("memory BIO write failed");
}

static int check_pin(struct tls *t, struct err *err)
{
	X509 *cert = SSL_get1_peer_certificate(t->ssl);
	if (!cert)
		return err_set(err, -EPROTO, ERR_PERM, "%s: server sent no certificate", t->label);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	X509_digest(cert, EVP_sha256(), md, &len);
	X509_free(cert);
	char hex[2 * EVP_MAX_MD_SIZE + 1];
	for (unsigned i = 0; i < len; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	if (strcmp(hex, t->fingerprint) != 0)
		return err_set(err, -EPROTO, ERR_PERM,
			       "%s: certificate fingerprint mismatch: expected sha256:%s, server has "
			       "sha256:%s",
			       t->label, t->fingerprint, hex);
	return 0;
}

/* Turns a failed SSL call into a sentence; the verify result says more than
 * the generic "certificate verify failed" in the error queue. */
static int ssl_failure(struct tls *t, int ret, const char *what, struct err *err)
{
	int code = SSL_get_error(t->ssl, ret);
	long vr = SSL_get_verify_result(t->ssl);
	char why[256];
	if (code == SSL_ERROR_SSL && vr != X509_V_OK) {
		ERR_clear_error();
		return err_set(err, -EPROTO, ERR_PERM, "%s: certificate verify failed: %s", t->label,
			       X509_verify_cert_error_string(vr));
	}
	if (code == SSL_ERROR_ZERO_RETURN || (code == SSL_ERROR_SYSCALL && !ERR_peek_error()))
		return err_set(err, UV_EOF, ERR_TEMP, "%s: %s: the server closed the connection",
			       t->label, what);
	openssl_reason(why, sizeof(why));
	return err_set(err, -EPROTO, ERR_TEMP, "%s: %s failed: %s", t->label, what, why);
}

int tls_handshake(struct tls *t, struct err *err)
{
	int ret = SSL_do_handshake(t->ssl);
	if (ret == 1) {
		snprintf(t->desc, sizeof(t->desc), "%s %s", SSL_get_version(t->ssl),
			 SSL_get_cipher_name(t->ssl));
		return t->fingerprint ? (check_pin(t, err) < 0 ? -EPROTO : 1) : 1;
	}
	int code = SSL_get_error(t->ssl, ret);
	if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE)
		return 0;
	return ssl_failure(t, ret, "TLS handshake", err);
}

int tls_read(struct tls *t, char *out, size_t cap, struct err *err)
{
	int ret = SSL_read(t->ssl, out, (int)cap);
	if (ret > 0)
		return ret;
	int code = SSL_get_error(t->ssl, ret);
	if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE)
		return 0;
	if (code == SSL_ERROR_ZERO_RETURN)
		return UV_EOF;
	return ssl_failure(t, ret, "TLS read", err);
}

int tls_write(struct tls *t, const void *p, size_t n, struct err *err)
{
	while (n > 0) {
		int chunk = n > (1 << 30) ? (1 << 30) : (int)n;
		int ret = SSL_write(t->ssl, p, chunk);
		if (ret <= 0)
			return ssl_failure(t, ret, "TLS write", err);
		p = (const char *)p + ret;
		n -= (size_t)ret;
	}
	return 0;
}

void tls_take_output(struct tls *t, struct buf *out)
{
	char chunk[16384];
	int n;
	while ((n = BIO_read(t->wbio, chunk, sizeof(chunk))) > 0)
		buf_append(out, chunk, (size_t)n);
}

const char *tls_describe(struct tls *t)
{
	return t->desc;
}
