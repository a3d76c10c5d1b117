/* TLS over memory BIOs: ciphertext goes in and out through buffers, so the
 * socket stays libuv's. Verification: the chain against ca_file or the system
 * store and the host name (SNI sent for names), or, when a fingerprint is
 * pinned, exactly that leaf certificate instead. TLS 1.2 is the minimum.
 * Internal to net/. */
#ifndef MF_NET_TLS_H
#define MF_NET_TLS_H

#include "core/buf.h"
#include "core/err.h"

#include <stddef.h>

struct tls;

/* label prefixes every error ("host:port"). Returns NULL with err set when
 * the trust store cannot be loaded. */
struct tls *tls_new(const char *host, const char *label, const char *ca_file,
		    const char *fingerprint, struct err *err);
void tls_free(struct tls **tp);
/* Ciphertext that arrived from the server. */
void tls_feed(struct tls *t, const char *p, size_t n);
/* Advances the handshake: 1 done (and verified), 0 needs more input, < 0 failed. */
int tls_handshake(struct tls *t, struct err *err);
/* Decrypts into out: > 0 bytes, 0 needs more input, UV_EOF on the server's
 * close_notify, other < 0 on error. */
int tls_read(struct tls *t, char *out, size_t cap, struct err *err);
/* Encrypts n bytes (all of them; memory BIOs never push back). */
int tls_write(struct tls *t, const void *p, size_t n, struct err *err);
/* Moves ciphertext waiting to be sent onto out. */
void tls_take_output(struct tls *t, struct buf *out);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384" once the handshake is done. */
const char *tls_describe(struct tls *t);

#endif
