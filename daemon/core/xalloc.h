/* Allocation that never returns NULL: out of memory aborts the process.
 * A daemon that runs out of memory cannot keep its promises about mail, so it
 * stops before it can half-write anything. Pure C, no libuv, no OpenSSL. */
#ifndef MF_CORE_XALLOC_H
#define MF_CORE_XALLOC_H

#include <stddef.h>
#include <stdlib.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
/* Grows an array of count elements of size bytes to at least need elements,
 * doubling; returns the (possibly moved) array and updates *cap. */
void *xgrow(void *p, size_t *cap, size_t need, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Frees *pp and sets it to NULL; NULL-safe. */
#define xfree(pp)                                                                                  \
	do {                                                                                       \
		free(*(pp));                                                                       \
		*(pp) = NULL;                                                                      \
	} while (0)

/* Overwrites the secret string *pp (a password, a token) before freeing it,
 * so it does not linger in freed memory; sets *pp to NULL; NULL-safe. */
void xfree_secret(char **pp);

/* A broken invariant: a programming error, never a runtime condition. */
#define BUG(...) bug_at(__FILE__, __LINE__, __VA_ARGS__)
#define BUG_ON(cond)                                                                               \
	do {                                                                                       \
		if (cond)                                                                          \
			BUG("%s", #cond);                                                          \
	} while (0)
void bug_at(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), noreturn));

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
