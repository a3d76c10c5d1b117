/* Base64 (RFC 4648 section 4), for SASL exchanges. Pure C. */
#ifndef MF_CORE_BASE64_H
#define MF_CORE_BASE64_H

#include <stddef.h>

/* The encoding of p[0..n) as a new NUL-terminated string (caller frees). */
char *base64_encode(const void *p, size_t n);

#endif
