/* A growable byte buffer that keeps a terminating NUL after its data, so
 * text in it can be used as a C string. Pure C. */
#ifndef MF_CORE_BUF_H
#define MF_CORE_BUF_H

#include <stddef.h>

struct buf {
	char *data; /* owned; NULL until the first append */
	size_t len;
	size_t cap;
};

void buf_append(struct buf *b, const void *p, size_t n);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string, quotes included (control characters escaped,
 * UTF-8 passed through). */
void buf_json_string(struct buf *b, const char *s);
/* Appends s with every control character (below 0x20, and 0x7f) written as
 * \xNN: text from a server, safe to show on a terminal or in a log. */
void buf_put_visible(struct buf *b, const char *s);
/* Drops the first n bytes. */
void buf_consume(struct buf *b, size_t n);
void buf_reset(struct buf *b);
/* Releases the memory; the buffer may be reused afterwards. */
void buf_free(struct buf *b);
/* Hands the data over to the caller (a NUL-terminated string) and resets b. */
char *buf_steal(struct buf *b);
/* The data as a C string ("" when empty). */
const char *buf_str(const struct buf *b);

#endif
