#include "ctl/request.h"

#include <string.h>

static enum ctl_parse bad(struct ctl_request *r, const char *why)
{
	r->why = why;
	return CTL_BAD;
}

enum ctl_parse ctl_request_feed(struct ctl_request *r, const char *p, size_t n)
{
	if (r->why)
		return CTL_BAD;
	if (r->buf.len + n > CTL_MAX_BYTES)
		return bad(r, "request too long");
	buf_append(&r->buf, p, n);
	/* Words are only taken once whole; buf's data may move while growing,
	 * so they are pointed at when the request is complete. */
	size_t start = r->scanned;
	for (size_t i = r->scanned; i < r->buf.len; i++) {
		if (r->buf.data[i] != '\0')
			continue;
		size_t len = i - start;
		if (!r->magic_seen) {
			if (len != strlen(CTL_MAGIC) || memcmp(r->buf.data + start, CTL_MAGIC, len))
				return bad(r, "not a mailferry control request");
			r->magic_seen = true;
		} else if (len == 0) {
			if (i + 1 != r->buf.len)
				return bad(r, "bytes after the end of the request");
			r->scanned = i + 1;
			r->nwords = 0;
			for (size_t k = strlen(CTL_MAGIC) + 1; k < i; k += strlen(r->buf.data + k) + 1)
				r->words[r->nwords++] = r->buf.data + k;
			r->words[r->nwords] = NULL;
			return CTL_DONE;
		} else if (++r->nwords > CTL_MAX_WORDS) {
			return bad(r, "too many words");
		}
		start = i + 1;
	}
	r->scanned = start;
	return CTL_MORE;
}

void ctl_request_free(struct ctl_request *r)
{
	buf_free(&r->buf);
	*r = (struct ctl_request){ 0 };
}

void ctl_request_encode(struct buf *b, int argc, char *const *argv)
{
	buf_append(b, CTL_MAGIC, strlen(CTL_MAGIC) + 1);
	for (int i = 0; i < argc; i++)
		buf_append(b, argv[i], strlen(argv[i]) + 1);
	buf_putc(b, '\0');
}
