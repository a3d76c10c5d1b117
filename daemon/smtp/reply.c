#include "smtp/reply.h"

#include <string.h>

static enum smtp_parse bad(struct smtp_reply *r, const char *why)
{
	r->why = why;
	return SMTP_BAD;
}

/* One complete line (without its line end): "NNN-text" or "NNN text" or "NNN". */
static enum smtp_parse take_line(struct smtp_reply *r, const char *s, size_t n)
{
	if (n < 3 || s[0] < '2' || s[0] > '5' || s[1] < '0' || s[1] > '9' || s[2] < '0' ||
	    s[2] > '9' || (n > 3 && s[3] != ' ' && s[3] != '-'))
		return bad(r, "a reply line that does not start with a reply code");
	int code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
	if (r->started && code != r->code)
		return bad(r, "a multi-line reply whose lines carry different codes");
	r->code = code;
	if (r->started)
		buf_putc(&r->text, '\n');
	r->started = true;
	if (n > 4)
		buf_append(&r->text, s + 4, n - 4);
	if (r->text.len > SMTP_REPLY_MAX)
		return bad(r, "a reply longer than the limit");
	return n > 3 && s[3] == '-' ? SMTP_MORE : SMTP_DONE;
}

enum smtp_parse smtp_reply_feed(struct smtp_reply *r, const char *p, size_t n, size_t *used)
{
	*used = 0;
	if (r->why)
		return SMTP_BAD;
	while (*used < n) {
		const char *nl = memchr(p + *used, '\n', n - *used);
		size_t take = nl ? (size_t)(nl - (p + *used)) + 1 : n - *used;
		if (r->line.len + take > SMTP_LINE_MAX + 2)
			return bad(r, "a reply line longer than the limit");
		buf_append(&r->line, p + *used, take);
		*used += take;
		if (!nl)
			return SMTP_MORE;
		size_t len = r->line.len - 1; /* without LF; a CR before it goes too */
		if (len && r->line.data[len - 1] == '\r')
			len--;
		enum smtp_parse res = take_line(r, r->line.data, len);
		buf_reset(&r->line);
		if (res != SMTP_MORE)
			return res;
	}
	return SMTP_MORE;
}

void smtp_reply_reset(struct smtp_reply *r)
{
	r->code = 0;
	r->started = false;
	r->why = NULL;
	buf_reset(&r->text);
	buf_reset(&r->line);
}

void smtp_reply_free(struct smtp_reply *r)
{
	buf_free(&r->text);
	buf_free(&r->line);
	*r = (struct smtp_reply){ 0 };
}
