#include "pop3/parse.h"

#include "core/buf.h"
#include "core/xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum mode {
	M_STATUS, /* the next line is a status line */
	M_LINES,  /* a multi-line block, handed out line by line */
	M_STREAM, /* a multi-line block, streamed to the sink */
	M_FAILED,
};

/* Where the stream stands within a line. */
enum spos {
	S_BOL,   /* at the start of a line */
	S_DOT,   /* after a '.' at the start of a line */
	S_DOTCR, /* after ".\r" at the start of a line */
	S_MID,   /* inside a line */
	S_CR,    /* after a '\r' inside a line */
};

struct pop3_reader {
	enum mode mode;
	struct err err;
	char line[POP3_MAX_LINE + 1];
	size_t llen;
	bool handed;     /* line went out as an item: start afresh at the next feed */
	uint64_t budget; /* bytes the multi-line block may still take */
	uint64_t max;    /* and all it was allowed */
	struct pop3_sink sink;
	enum spos pos;
	size_t olen;
	char out[65536]; /* converted bytes for the sink, written in large pieces */
};

struct pop3_reader *pop3_reader_new(void)
{
	struct pop3_reader *r = xcalloc(1, sizeof(*r));
	return r;
}

void pop3_reader_free(struct pop3_reader **r)
{
	free(*r);
	*r = NULL;
}

void pop3_reader_reset(struct pop3_reader *r)
{
	r->mode = M_STATUS;
	r->llen = 0;
	r->handed = false;
	r->olen = 0;
	err_clear(&r->err);
}

const struct err *pop3_reader_err(const struct pop3_reader *r)
{
	return &r->err;
}

void pop3_reader_multi(struct pop3_reader *r, const struct pop3_sink *sink, uint64_t max_bytes)
{
	BUG_ON(r->mode != M_STATUS);
	r->budget = r->max = max_bytes;
	r->llen = 0;
	r->handed = false;
	if (sink) {
		r->mode = M_STREAM;
		r->sink = *sink;
		r->pos = S_BOL;
		r->olen = 0;
	} else {
		r->mode = M_LINES;
	}
}

/* Fails the reader with a message that quotes the start of what it read. */
static enum pop3_res fail(struct pop3_reader *r, const char *what)
{
	struct buf shown = { 0 };
	size_t n = r->llen < 80 ? r->llen : 80;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)r->line[i];
		if (c < 0x20 || c == 0x7f)
			buf_printf(&shown, "\\x%02x", c);
		else
			buf_putc(&shown, (char)c);
	}
	if (r->llen > 0)
		err_set(&r->err, -EPROTO, ERR_PERM, "%s: \"%s%s\"", what, buf_str(&shown),
			r->llen > n ? "..." : "");
	else
		err_set(&r->err, -EPROTO, ERR_PERM, "%s", what);
	buf_free(&shown);
	r->mode = M_FAILED;
	return POP3_FAIL;
}

static enum pop3_res too_long(struct pop3_reader *r)
{
	char what[96];
	snprintf(what, sizeof(what), "the server's response went on past %llu bytes",
		 (unsigned long long)r->max);
	r->llen = 0;
	return fail(r, what);
}

/* Gathers one line; true when its LF has arrived (the line, without CR LF,
 * is in r->line). *i advances over what was taken. */
static bool gather(struct pop3_reader *r, const char *p, size_t len, size_t *i, bool *bad)
{
	const char *s = p + *i;
	size_t n = len - *i;
	const char *lf = memchr(s, '\n', n);
	size_t take = lf ? (size_t)(lf - s) : n;
	*bad = false;
	if (r->llen + take + 1 > POP3_MAX_LINE) {
		take = POP3_MAX_LINE - r->llen;
		memcpy(r->line + r->llen, s, take);
		r->llen += take;
		*bad = true;
		return false;
	}
	memcpy(r->line + r->llen, s, take);
	r->llen += take;
	*i += take + (lf ? 1 : 0);
	if (!lf)
		return false;
	if (r->llen > 0 && r->line[r->llen - 1] == '\r')
		r->llen--;
	r->line[r->llen] = '\0';
	return true;
}

/* "[CODE] text": RFC 2449 section 8. A bracket that does not close a code
 * is ordinary text. */
static void split_code(char *text, struct pop3_item *item)
{
	item->code = "";
	item->text = text;
	if (text[0] != '[')
		return;
	size_t n = strcspn(text + 1, "[] ");
	if (n == 0 || text[1 + n] != ']')
		return;
	text[1 + n] = '\0';
	item->code = text + 1;
	item->text = text + 2 + n;
	if (*item->text == ' ')
		item->text++;
}

static bool starts_word(const char *line, const char *word)
{
	size_t n = strlen(word);
	return strncasecmp(line, word, n) == 0 && (line[n] == '\0' || line[n] == ' ');
}

static enum pop3_res status_line(struct pop3_reader *r, struct pop3_item *item)
{
	char *line = r->line;
	if (starts_word(line, "+OK") || starts_word(line, "-ERR")) {
		item->kind = line[0] == '+' ? POP3_OK : POP3_ERR;
		char *text = line + (line[0] == '+' ? 3 : 4);
		split_code(*text ? text + 1 : text, item);
	} else if (starts_word(line, "+")) {
		item->kind = POP3_CONT;
		item->code = "";
		item->text = line[1] ? line + 2 : line + 1;
	} else {
		return fail(r, "not a POP3 status line");
	}
	item->len = strlen(item->text);
	return POP3_DONE;
}

static enum pop3_res listing_line(struct pop3_reader *r, struct pop3_item *item)
{
	item->code = "";
	if (strcmp(r->line, ".") == 0) {
		item->kind = POP3_END;
		item->text = "";
		r->mode = M_STATUS;
	} else {
		item->kind = POP3_LINE;
		item->text = r->line[0] == '.' ? r->line + 1 : r->line;
	}
	item->len = strlen(item->text);
	return POP3_DONE;
}

static enum pop3_res feed_line(struct pop3_reader *r, const char *p, size_t len, size_t *used,
			       struct pop3_item *item)
{
	size_t i = 0, avail = len;
	bool lines = r->mode == M_LINES, bad;
	if (lines && r->budget < avail)
		avail = (size_t)r->budget;
	bool done = gather(r, p, avail, &i, &bad);
	if (lines)
		r->budget -= i;
	*used = i;
	if (bad)
		return fail(r, "the server sent a line that is too long");
	if (!done) {
		if (lines && r->budget == 0)
			return too_long(r);
		return POP3_MORE;
	}
	if (memchr(r->line, '\0', r->llen))
		return fail(r, "the server sent a NUL byte in a line");
	r->handed = true;
	return lines ? listing_line(r, item) : status_line(r, item);
}

static int flush(struct pop3_reader *r)
{
	if (r->olen == 0)
		return 0;
	int rc = r->sink.write(r->sink.ctx, r->out, r->olen, &r->err);
	r->olen = 0;
	if (rc >= 0)
		return 0;
	if (!r->err.msg[0])
		err_set(&r->err, rc, ERR_LOCAL, "storing the message failed");
	r->mode = M_FAILED;
	return rc;
}

static int emit(struct pop3_reader *r, const char *p, size_t n)
{
	while (n > 0) {
		if (r->olen == sizeof(r->out) && flush(r) < 0)
			return -1;
		size_t k = sizeof(r->out) - r->olen;
		k = k < n ? k : n;
		memcpy(r->out + r->olen, p, k);
		r->olen += k;
		p += k;
		n -= k;
	}
	return 0;
}

/* Copies the inside of a line up to its next CR or LF. */
static int copy_mid(struct pop3_reader *r, const char *p, size_t avail, size_t *i)
{
	size_t k = *i;
	while (k < avail && p[k] != '\r' && p[k] != '\n')
		k++;
	int rc = emit(r, p + *i, k - *i);
	*i = k;
	if (k == avail || rc < 0)
		return rc;
	r->pos = p[k] == '\n' ? S_BOL : S_CR;
	*i = k + 1;
	return p[k] == '\n' ? emit(r, "\n", 1) : 0;
}

/* One step of the stream at p[*i]; 1 at the end of the block, -1 on a
 * sink failure, 0 otherwise. */
static int stream_step(struct pop3_reader *r, const char *p, size_t avail, size_t *i)
{
	char c = p[*i];
	switch (r->pos) {
	case S_BOL:
		r->pos = c == '.' ? S_DOT : S_MID;
		*i += c == '.';
		return 0;
	case S_DOT: /* a dot that is not the end was stuffed: it goes */
		if (c == '\n' || c == '\r') {
			(*i)++;
			if (c == '\n')
				return 1;
			r->pos = S_DOTCR;
			return 0;
		}
		r->pos = S_MID;
		return 0;
	case S_DOTCR:
		if (c == '\n') {
			(*i)++;
			return 1;
		}
		r->pos = S_MID;
		return emit(r, "\r", 1);
	case S_CR:
		if (c == '\n') {
			(*i)++;
			r->pos = S_BOL;
			return emit(r, "\n", 1);
		}
		r->pos = S_MID;
		return emit(r, "\r", 1);
	case S_MID:
		return copy_mid(r, p, avail, i);
	}
	return 0;
}

static enum pop3_res feed_stream(struct pop3_reader *r, const char *p, size_t len, size_t *used,
				 struct pop3_item *item)
{
	size_t i = 0, avail = len < r->budget ? len : (size_t)r->budget;
	int rc = 0;
	while (i < avail && rc == 0)
		rc = stream_step(r, p, avail, &i);
	r->budget -= i;
	*used = i;
	if (rc < 0 || flush(r) < 0)
		return POP3_FAIL;
	if (rc == 1) {
		r->mode = M_STATUS;
		*item = (struct pop3_item){ .kind = POP3_END, .code = "", .text = "" };
		return POP3_DONE;
	}
	if (i < len)
		return too_long(r);
	return POP3_MORE;
}

enum pop3_res pop3_reader_feed(struct pop3_reader *r, const char *p, size_t len, size_t *used,
			       struct pop3_item *item)
{
	*used = 0;
	if (r->handed) {
		r->llen = 0;
		r->handed = false;
	}
	switch (r->mode) {
	case M_FAILED:
		return POP3_FAIL;
	case M_STREAM:
		return feed_stream(r, p, len, used, item);
	case M_STATUS:
	case M_LINES:
		break;
	}
	if (len == 0)
		return POP3_MORE;
	return feed_line(r, p, len, used, item);
}

/* An unsigned decimal number at *s (at most max), then a space or the end. */
static int number(const char **s, uint64_t max, uint64_t *out)
{
	const char *p = *s;
	uint64_t v = 0;
	if (*p < '0' || *p > '9')
		return -EPROTO;
	for (; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > max)
			return -EPROTO;
	}
	if (*p != ' ' && *p != '\0')
		return -EPROTO;
	*s = *p == ' ' ? p + 1 : p;
	*out = v;
	return 0;
}

static int msg_and_number(const char *line, uint32_t *a, uint64_t *b, uint64_t bmax)
{
	uint64_t v;
	if (number(&line, UINT32_MAX, &v) < 0 || number(&line, bmax, b) < 0)
		return -EPROTO;
	*a = (uint32_t)v;
	return 0;
}

int pop3_parse_stat(const char *text, uint32_t *count, uint64_t *size)
{
	return msg_and_number(text, count, size, UINT64_MAX / 16);
}

int pop3_parse_list(const char *line, uint32_t *msg, uint64_t *size)
{
	if (msg_and_number(line, msg, size, UINT64_MAX / 16) < 0 || *msg == 0)
		return -EPROTO;
	return 0;
}

int pop3_parse_uidl(const char *line, uint32_t *msg, const char **uid, size_t *uid_len)
{
	uint64_t v;
	if (number(&line, UINT32_MAX, &v) < 0 || v == 0)
		return -EPROTO;
	size_t n = 0;
	while (line[n] >= 0x21 && line[n] <= 0x7e)
		n++;
	/* Some servers pad with trailing spaces; anything else is not an id. */
	if (n == 0 || n > 70 || line[n + strspn(line + n, " ")] != '\0')
		return -EPROTO;
	*msg = (uint32_t)v;
	*uid = line;
	*uid_len = n;
	return 0;
}
