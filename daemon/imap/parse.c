/* The reader works line by line: bytes are collected up to LF (bounded by
 * max_line), then the line is tokenized. A line that ends in a literal
 * announcement ({n}, {n+}, ~{n}) leaves the open lists on a stack, the
 * literal's bytes stream to the sink or into memory, and the next line
 * continues the same response. Only the announcement at the very end of a
 * line is a literal, and never inside resp-text, so "A1 OK done {5}" is text. */
#include "imap/parse.h"

#include "core/xalloc.h"
#include "imap/response_priv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const struct imap_limits imap_limits_before_login = {
    .max_line = 8 * 1024,
    .max_depth = 16,
    .max_inline_literal = 8 * 1024,
    .max_values = 2048,
    .max_bytes = 256 * 1024,
};

const struct imap_limits imap_limits_after_login = {
    .max_line = 1024 * 1024,
    .max_depth = 64,
    .max_inline_literal = 1024 * 1024,
    .max_values = 512 * 1024,
    .max_bytes = 16 * 1024 * 1024,
};

/* Frame arrays above this many values are released after a response, so one
 * huge SEARCH does not pin its memory for the connection's life. */
#define FRAME_KEEP 4096

enum mode { M_LINE, M_LITERAL, M_DONE, M_ERROR };

/* Token results; a parse function returns -1 (error, r->err set), 0, or: */
#define TOK_LITERAL 1 /* the line ended in a literal announcement */

struct frame {
	struct imap_value *v; /* values of one open list (frames[0]: the top level) */
	size_t n, cap;
};

struct imap_reader {
	struct imap_limits lim;
	struct imap_sink sink;
	enum mode mode;
	struct imap_response *resp; /* in progress, or complete in M_DONE */
	bool in_args;               /* the head is parsed; lines continue the values */
	struct buf line;            /* the current line up to its LF */
	size_t off;                 /* bytes of this response before the current line */
	size_t nvalues, bytes;      /* what resp costs so far */
	struct frame *frames;
	size_t depth, nframes; /* frames[depth] is the innermost open list */
	bool need_sep;         /* a token just ended: a space must follow */
	bool after_close;      /* ... but "(a)(b)" is fine (BODYSTRUCTURE, THREAD) */
	/* the literal being read */
	uint64_t lit_size, lit_left;
	char *lit_dst;    /* in memory: where the bytes go */
	void *lit_handle; /* streamed: the sink's handle */
	const char *lit_item;
	struct err err;
};

struct cur {
	const char *s;
	size_t pos, end;
};

/* Records why the parse failed; the caller tears down after returning -1. */
__attribute__((format(printf, 3, 4))) static int fail(struct imap_reader *r, size_t pos,
                                                      const char *fmt, ...)
{
	char what[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	err_set(&r->err, -EPROTO, ERR_PERM, "%s at offset %zu in response line \"%s\"", what,
	        r->off + pos, imap_response_line(r->resp));
	return -1;
}

static const char *describe(unsigned char c, char out[16])
{
	if (c >= 0x20 && c < 0x7f)
		snprintf(out, 16, "'%c'", c);
	else
		snprintf(out, 16, "byte 0x%02x", c);
	return out;
}

static int unexpected(struct imap_reader *r, const struct cur *c)
{
	char d[16];
	return fail(r, c->pos, "unexpected %s", describe((unsigned char)c->s[c->pos], d));
}

static bool atom_char(unsigned char c, bool in_code)
{
	if (c <= 0x20 || c == 0x7f)
		return false;
	switch (c) {
	case '(':
	case ')':
	case '{':
	case '"':
	case '\\':
		return false;
	case ']':
		return !in_code;
	default:
		/* 8-bit bytes are let through: some servers send raw UTF-8 names. */
		return true;
	}
}

/* Charges bytes and values to the response; at: the offset of the token. */
static int charge(struct imap_reader *r, size_t at, size_t bytes, size_t values)
{
	if (values > r->lim.max_values - r->nvalues || r->nvalues > r->lim.max_values)
		return fail(r, at, "more than %zu values in one response", r->lim.max_values);
	if (bytes > r->lim.max_bytes - r->bytes || r->bytes > r->lim.max_bytes)
		return fail(r, at, "response needs more than %zu bytes of memory",
		            r->lim.max_bytes);
	r->nvalues += values;
	r->bytes += bytes;
	return 0;
}

/* A copy of p[0..n) kept in the response, charged to its limits. */
static char *keep(struct imap_reader *r, size_t at, const char *p, size_t n)
{
	if (charge(r, at, n + 1, 0) < 0)
		return NULL;
	return imap_resp_strndup(r->resp, p, n);
}

/* Appends a value of type t to the innermost open list; extra is what its
 * data will cost. The pointer is valid until the next push. */
static struct imap_value *push(struct imap_reader *r, size_t at, enum imap_value_type t,
                               size_t extra)
{
	if (charge(r, at, sizeof(struct imap_value) + extra, 1) < 0)
		return NULL;
	struct frame *f = &r->frames[r->depth];
	f->v = xgrow(f->v, &f->cap, f->n + 1, sizeof(*f->v));
	struct imap_value *v = &f->v[f->n++];
	memset(v, 0, sizeof(*v));
	v->type = t;
	return v;
}

/* Moves the values of frame i into the response; returns them (NULL if none). */
static struct imap_value *collect(struct imap_reader *r, size_t i, size_t *n)
{
	struct frame *f = &r->frames[i];
	struct imap_value *items = NULL;
	*n = f->n;
	if (f->n) {
		items = imap_resp_alloc(r->resp, f->n * sizeof(*items));
		memcpy(items, f->v, f->n * sizeof(*items));
	}
	f->n = 0;
	return items;
}

static int open_list(struct imap_reader *r, struct cur *c)
{
	if (r->depth >= r->lim.max_depth)
		return fail(r, c->pos, "lists nested deeper than %zu", r->lim.max_depth);
	if (r->depth + 1 >= r->nframes) {
		size_t old = r->nframes;
		r->frames = xgrow(r->frames, &r->nframes, r->depth + 2, sizeof(*r->frames));
		memset(r->frames + old, 0, (r->nframes - old) * sizeof(*r->frames));
	}
	r->depth++;
	r->frames[r->depth].n = 0;
	c->pos++;
	r->need_sep = false;
	return 0;
}

static int close_list(struct imap_reader *r, struct cur *c)
{
	if (r->depth == 0)
		return unexpected(r, c);
	size_t n;
	struct imap_value *items = collect(r, r->depth, &n);
	r->depth--;
	struct imap_value *v = push(r, c->pos, IMAP_LIST, 0);
	if (!v)
		return -1;
	v->items = items;
	v->len = n;
	c->pos++;
	r->after_close = true;
	return 0;
}

static int quoted(struct imap_reader *r, struct cur *c)
{
	size_t i = c->pos + 1, n = 0;
	for (;; i++, n++) {
		if (i >= c->end)
			return fail(r, c->pos, "unterminated quoted string");
		if (c->s[i] == '"')
			break;
		if (c->s[i] != '\\')
			continue;
		if (++i >= c->end)
			return fail(r, c->pos, "unterminated quoted string");
		if (c->s[i] != '\\' && c->s[i] != '"') {
			char d[16];
			return fail(r, i - 1, "bad escape of %s in quoted string",
			            describe((unsigned char)c->s[i], d));
		}
	}
	struct imap_value *v = push(r, c->pos, IMAP_STRING, n + 1);
	if (!v)
		return -1;
	char *out = imap_resp_alloc(r->resp, n + 1);
	for (size_t j = c->pos + 1, k = 0; k < n; j++, k++) {
		if (c->s[j] == '\\')
			j++;
		out[k] = c->s[j];
	}
	out[n] = '\0';
	v->str = out;
	v->len = n;
	c->pos = i + 1;
	return 0;
}

/* FETCH items whose "[...]" may hold spaces and parens and is part of the atom. */
static bool section_prefix(const char *p, size_t n)
{
	static const char *const names[] = {"BODY", "BODY.PEEK", "BINARY", "BINARY.PEEK",
	                                    "BINARY.SIZE"};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (strlen(names[i]) == n && strncasecmp(p, names[i], n) == 0)
			return true;
	return false;
}

/* Skips "[...]" at c->pos, quoted strings inside included. Without a ']'
 * on the line the '[' is an ordinary atom character after all. */
static void skip_section(struct cur *c)
{
	bool in_quote = false;
	for (size_t i = c->pos + 1; i < c->end; i++) {
		char ch = c->s[i];
		if (in_quote && ch == '\\')
			i++;
		else if (ch == '"')
			in_quote = !in_quote;
		else if (ch == ']' && !in_quote) {
			c->pos = i + 1;
			return;
		}
	}
	c->pos++;
}

static enum imap_value_type classify(const char *p, size_t n, uint64_t *num)
{
	if (n == 3 && strncasecmp(p, "NIL", 3) == 0)
		return IMAP_NIL;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned char)p[i] - '0';
		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return IMAP_ATOM;
		v = v * 10 + d;
	}
	*num = v;
	return IMAP_NUMBER;
}

static int atom(struct imap_reader *r, struct cur *c, bool in_code)
{
	size_t start = c->pos;
	if (c->s[c->pos] == '\\') /* flags: \Seen, \* */
		c->pos++;
	while (c->pos < c->end) {
		unsigned char ch = (unsigned char)c->s[c->pos];
		/* Only inside a list (FETCH items): a mailbox may be called "BODY[x". */
		if (ch == '[' && !in_code && r->depth &&
		    section_prefix(c->s + start, c->pos - start)) {
			skip_section(c);
		} else if (atom_char(ch, in_code)) {
			c->pos++;
		} else {
			break;
		}
	}
	size_t n = c->pos - start;
	uint64_t num = 0;
	struct imap_value *v = push(r, start, classify(c->s + start, n, &num), n + 1);
	if (!v)
		return -1;
	v->str = imap_resp_strndup(r->resp, c->s + start, n);
	v->len = n;
	v->num = num;
	return 0;
}

/* The literal announced at the end of the line: sink or memory. */
static int start_literal(struct imap_reader *r, size_t at, uint64_t size)
{
	struct frame *f = &r->frames[r->depth];
	struct imap_response_priv *p = r->resp->priv;
	const char *item = f->n && f->v[f->n - 1].type == IMAP_ATOM ? f->v[f->n - 1].str : NULL;
	void *h = p->sink.open ? p->sink.open(p->sink.ctx, r->resp, item, size) : NULL;
	struct imap_value *v;
	if (h) {
		size_t idx = imap_resp_add_handle(r->resp, h);
		if (!(v = push(r, at, IMAP_SINK, 0)))
			return -1;
		v->handle = h;
		v->len = idx;
		v->num = size;
		r->lit_dst = NULL;
	} else {
		if (size > r->lim.max_inline_literal)
			return fail(r, at, "literal of %" PRIu64 " bytes exceeds the limit of %zu",
			            size, r->lim.max_inline_literal);
		if (!(v = push(r, at, IMAP_STRING, (size_t)size + 1)))
			return -1;
		v->str = imap_resp_alloc(r->resp, (size_t)size + 1);
		v->str[size] = '\0';
		v->len = (size_t)size;
		r->lit_dst = v->str;
	}
	r->lit_handle = h;
	r->lit_item = item;
	r->lit_size = r->lit_left = size;
	return TOK_LITERAL;
}

/* "{n}", "{n+}" or "~{n}" (c->pos at '{' or '~'); must end the line. */
static int literal(struct imap_reader *r, struct cur *c)
{
	size_t at = c->pos, i = c->pos + (c->s[c->pos] == '~') + 1;
	uint64_t size = 0;
	size_t digits = 0;
	for (; i < c->end && c->s[i] >= '0' && c->s[i] <= '9'; i++, digits++) {
		unsigned d = (unsigned)(c->s[i] - '0');
		if (size > (UINT64_MAX - d) / 10)
			return fail(r, at, "literal size too large");
		size = size * 10 + d;
	}
	if (i < c->end && c->s[i] == '+')
		i++;
	if (!digits || i >= c->end || c->s[i] != '}')
		return fail(r, at, "malformed literal announcement");
	if (i + 1 != c->end)
		return fail(r, at, "literal announcement not at the end of the line");
	c->pos = c->end;
	return start_literal(r, at, size);
}

/* One step at c->pos < c->end: a space, a list bracket or one value. */
static int token(struct imap_reader *r, struct cur *c, bool in_code)
{
	unsigned char ch = (unsigned char)c->s[c->pos];
	if (ch == ' ') {
		c->pos++;
		r->need_sep = false;
		return 0;
	}
	if (r->need_sep && ch != ')' && !(ch == '(' && r->after_close)) {
		char d[16];
		return fail(r, c->pos, "expected a space before %s", describe(ch, d));
	}
	r->after_close = false;
	r->need_sep = true;
	if (ch == '(')
		return open_list(r, c);
	if (ch == ')')
		return close_list(r, c);
	if (ch == '"')
		return quoted(r, c);
	if (ch == '{' || (ch == '~' && c->pos + 1 < c->end && c->s[c->pos + 1] == '{')) {
		if (in_code)
			return fail(r, c->pos, "literal in a response code");
		return literal(r, c);
	}
	if (atom_char(ch, in_code) || ch == '\\')
		return atom(r, c, in_code);
	return unexpected(r, c);
}

/* Values up to the end of the line: 0 at the end of the response,
 * TOK_LITERAL when a literal follows, -1 on error. */
static int values(struct imap_reader *r, struct cur *c)
{
	while (c->pos < c->end) {
		int rc = token(r, c, false);
		if (rc)
			return rc;
	}
	if (r->depth)
		return fail(r, c->pos, "%zu list(s) not closed at the end of the response",
		            r->depth);
	return 0;
}

/* Code arguments up to the ']' that closes the code. */
static int code_values(struct imap_reader *r, struct cur *c)
{
	r->need_sep = false;
	r->after_close = false;
	for (;;) {
		if (c->pos >= c->end)
			return fail(r, c->pos, "unterminated response code");
		if (c->s[c->pos] == ']' && r->depth == 0) {
			c->pos++;
			return 0;
		}
		if (token(r, c, true) < 0)
			return -1;
	}
}

/* A keyword (response name, code name), upper-cased; NULL on error. */
static const char *keyword(struct imap_reader *r, struct cur *c, bool in_code)
{
	size_t start = c->pos;
	while (c->pos < c->end && atom_char((unsigned char)c->s[c->pos], in_code))
		c->pos++;
	if (c->pos == start) {
		if (c->pos == c->end)
			fail(r, c->pos, "unexpected end of line");
		else
			unexpected(r, c);
		return NULL;
	}
	char *s = keep(r, start, c->s + start, c->pos - start);
	for (char *p = s; p && *p; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	return s;
}

/* "[CODE args]" at c->pos. Arguments that do not parse as values are kept as
 * one string: resp-text-code allows any text up to ']'. */
static int code(struct imap_reader *r, struct cur *c)
{
	struct imap_response *resp = r->resp;
	size_t open = c->pos++;
	if (!(resp->code = keyword(r, c, true)))
		return -1;
	if (c->pos < c->end && c->s[c->pos] == ']') {
		c->pos++;
		return 0;
	}
	size_t args = c->pos + (c->pos < c->end && c->s[c->pos] == ' ');
	c->pos = args;
	if (c->s[args - 1] == ' ' && code_values(r, c) == 0) {
		resp->code_args = collect(r, 0, &resp->ncode_args);
		return 0;
	}
	err_clear(&r->err);
	r->depth = 0;
	r->frames[0].n = 0;
	const char *close = memchr(c->s + args, ']', c->end - args);
	if (!close)
		return fail(r, open, "unterminated response code");
	struct imap_value *v = push(r, args, IMAP_STRING, (size_t)(close - c->s) - args + 1);
	if (!v)
		return -1;
	v->len = (size_t)(close - c->s) - args;
	v->str = imap_resp_strndup(resp, c->s + args, v->len);
	resp->code_args = collect(r, 0, &resp->ncode_args);
	c->pos = (size_t)(close - c->s) + 1;
	return 0;
}

/* resp-text: an optional code, then human text to the end of the line. */
static int resp_text(struct imap_reader *r, struct cur *c)
{
	if (c->pos < c->end && c->s[c->pos] == '[') {
		if (code(r, c) < 0)
			return -1;
		if (c->pos < c->end && c->s[c->pos] == ' ')
			c->pos++;
	}
	r->resp->text = keep(r, c->pos, c->s + c->pos, c->end - c->pos);
	return r->resp->text ? 0 : -1;
}

static enum imap_status status_of(const char *name)
{
	static const struct {
		const char *name;
		enum imap_status st;
	} map[] = {
	    {"OK", IMAP_STATUS_OK},           {"NO", IMAP_STATUS_NO},   {"BAD", IMAP_STATUS_BAD},
	    {"PREAUTH", IMAP_STATUS_PREAUTH}, {"BYE", IMAP_STATUS_BYE},
	};
	for (size_t i = 0; i < ARRAY_SIZE(map); i++)
		if (strcmp(name, map[i].name) == 0)
			return map[i].st;
	return IMAP_STATUS_NONE;
}

/* After a status name: end of line, or a space and resp-text. */
static int status_rest(struct imap_reader *r, struct cur *c)
{
	if (c->pos == c->end) {
		r->resp->text = "";
		return 0;
	}
	if (c->s[c->pos] != ' ')
		return unexpected(r, c);
	c->pos++;
	return resp_text(r, c);
}

static int expect_space(struct imap_reader *r, struct cur *c)
{
	if (c->pos < c->end && c->s[c->pos] == ' ') {
		c->pos++;
		return 0;
	}
	if (c->pos == c->end)
		return fail(r, c->pos, "unexpected end of line");
	return unexpected(r, c);
}

static int number(struct imap_reader *r, struct cur *c, uint64_t *out)
{
	size_t start = c->pos;
	uint64_t v = 0;
	for (; c->pos < c->end && c->s[c->pos] >= '0' && c->s[c->pos] <= '9'; c->pos++) {
		unsigned d = (unsigned)(c->s[c->pos] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return fail(r, start, "number too large");
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* After "* ": a status, or (numbered) data. */
static int untagged(struct imap_reader *r, struct cur *c)
{
	struct imap_response *resp = r->resp;
	bool numbered = c->pos < c->end && c->s[c->pos] >= '0' && c->s[c->pos] <= '9';
	if (numbered) {
		if (number(r, c, &resp->number) < 0 || expect_space(r, c) < 0)
			return -1;
		resp->has_number = true;
	}
	if (!(resp->name = keyword(r, c, false)))
		return -1;
	if (!numbered && (resp->status = status_of(resp->name)) != IMAP_STATUS_NONE)
		return status_rest(r, c);
	r->in_args = true;
	r->need_sep = true;
	r->after_close = false;
	return values(r, c);
}

static bool tag_char(unsigned char ch)
{
	return atom_char(ch, false) && ch != '+' && ch != '%' && ch != '*' && ch < 0x80;
}

static int tagged(struct imap_reader *r, struct cur *c)
{
	struct imap_response *resp = r->resp;
	while (c->pos < c->end && tag_char((unsigned char)c->s[c->pos]))
		c->pos++;
	if (c->pos == 0)
		return fail(r, 0, "unexpected %s at the start of a response",
		            describe((unsigned char)c->s[0], (char[16]){0}));
	if (!(resp->tag = keep(r, 0, c->s, c->pos)) || expect_space(r, c) < 0)
		return -1;
	size_t at = c->pos;
	if (!(resp->name = keyword(r, c, false)))
		return -1;
	resp->status = status_of(resp->name);
	if (resp->status != IMAP_STATUS_OK && resp->status != IMAP_STATUS_NO &&
	    resp->status != IMAP_STATUS_BAD)
		return fail(r, at, "tagged response with %s instead of OK, NO or BAD", resp->name);
	return status_rest(r, c);
}

/* The first line of a response. */
static int head(struct imap_reader *r, struct cur *c)
{
	struct imap_response *resp = r->resp;
	if (c->end == 0)
		return fail(r, 0, "empty response line");
	switch (c->s[0]) {
	case '+':
		resp->kind = IMAP_RESP_CONTINUE;
		c->pos = 1;
		if (c->pos == c->end) {
			resp->text = "";
			return 0;
		}
		return expect_space(r, c) < 0 ? -1 : resp_text(r, c);
	case '*':
		resp->kind = IMAP_RESP_UNTAGGED;
		c->pos = 1;
		return expect_space(r, c) < 0 ? -1 : untagged(r, c);
	default:
		resp->kind = IMAP_RESP_TAGGED;
		return tagged(r, c);
	}
}

static void reset_frames(struct imap_reader *r)
{
	for (size_t i = 0; i < r->nframes; i++) {
		r->frames[i].n = 0;
		if (r->frames[i].cap > FRAME_KEEP) {
			xfree(&r->frames[i].v);
			r->frames[i].cap = 0;
		}
	}
	r->depth = 0;
}

/* A complete line is in r->line: parse it. 0: the response is complete;
 * TOK_LITERAL: a literal follows; -1: error. */
static int process_line(struct imap_reader *r)
{
	const char *s = r->line.data;
	size_t n = r->line.len - 1; /* without LF; a bare LF is accepted */
	if (n && s[n - 1] == '\r')
		n--;
	imap_resp_line_append(r->resp, s, n);
	struct cur c = {s, 0, n};
	for (size_t i = 0; i < n; i++) {
		/* Never valid outside a literal; checked once here so no
		 * token has to think about them. */
		if (s[i] == '\0' || s[i] == '\r') {
			c.pos = i;
			return unexpected(r, &c);
		}
	}
	int rc = r->in_args ? values(r, &c) : head(r, &c);
	if (rc != 0)
		return rc;
	if (r->in_args)
		r->resp->args = collect(r, 0, &r->resp->nargs);
	return 0;
}

static int feed_line(struct imap_reader *r, const char *p, size_t len, size_t *used)
{
	const char *lf = memchr(p, '\n', len);
	size_t n = lf ? (size_t)(lf - p) + 1 : len;
	if (n > r->lim.max_line - r->line.len || r->line.len > r->lim.max_line) {
		/* The excerpt shows the line up to the byte past the limit,
		 * however the input was chunked. */
		size_t room =
		    r->line.len <= r->lim.max_line ? r->lim.max_line + 1 - r->line.len : 0;
		imap_resp_line_append(r->resp, r->line.data, r->line.len);
		imap_resp_line_append(r->resp, p, n < room ? n : room);
		return fail(r, r->lim.max_line, "response line longer than %zu bytes",
		            r->lim.max_line);
	}
	buf_append(&r->line, p, n);
	*used = n;
	if (!lf)
		return 0;
	int rc = process_line(r);
	r->off += r->line.len;
	buf_reset(&r->line);
	if (rc == TOK_LITERAL) {
		r->need_sep = true;
		r->after_close = false;
		r->mode = r->lit_left ? M_LITERAL : M_LINE;
		return 0;
	}
	if (rc == 0)
		r->mode = M_DONE;
	return rc;
}

static int feed_literal(struct imap_reader *r, const char *p, size_t len, size_t *used)
{
	size_t n = r->lit_left < len ? (size_t)r->lit_left : len;
	if (r->lit_handle) {
		struct imap_response_priv *priv = r->resp->priv;
		int rc = priv->sink.write(priv->sink.ctx, r->lit_handle, p, n);
		if (rc != 0) {
			err_set(&r->err, rc < 0 ? rc : -EIO, ERR_LOCAL,
			        "could not store the literal of %" PRIu64 " bytes (%s): %s",
			        r->lit_size, r->lit_item ? r->lit_item : "no item name",
			        strerror(rc < 0 ? -rc : EIO));
			return -1;
		}
	} else {
		memcpy(r->lit_dst + (r->lit_size - r->lit_left), p, n);
	}
	r->lit_left -= n;
	r->off += n;
	*used = n;
	if (!r->lit_left) {
		r->lit_handle = NULL;
		r->mode = M_LINE;
	}
	return 0;
}

static void start_response(struct imap_reader *r)
{
	r->resp = imap_resp_new(&r->sink);
	r->in_args = false;
	r->off = 0;
	r->nvalues = r->bytes = 0;
	r->need_sep = r->after_close = false;
	r->lit_handle = NULL;
	r->lit_left = 0;
	r->mode = M_LINE;
}

/* Drops the response in progress (or complete and not taken). */
static void drop(struct imap_reader *r)
{
	imap_response_free(&r->resp);
	reset_frames(r);
	buf_reset(&r->line);
	r->lit_handle = NULL;
	r->lit_left = 0;
	r->mode = M_LINE;
}

enum parse_res imap_reader_feed(struct imap_reader *r, const char *p, size_t len, size_t *used_out)
{
	size_t used = 0;
	int rc = 0;
	*used_out = 0;
	if (r->mode == M_ERROR)
		return PARSE_ERR;
	if (r->mode == M_DONE)
		drop(r);
	while (used < len && r->mode != M_DONE) {
		size_t n = 0;
		if (!r->resp)
			start_response(r);
		if (r->mode == M_LITERAL)
			rc = feed_literal(r, p + used, len - used, &n);
		else
			rc = feed_line(r, p + used, len - used, &n);
		used += n;
		if (rc < 0) {
			drop(r);
			r->mode = M_ERROR;
			*used_out = used;
			return PARSE_ERR;
		}
	}
	*used_out = used;
	return r->mode == M_DONE ? PARSE_DONE : PARSE_MORE;
}

struct imap_response *imap_reader_take(struct imap_reader *r)
{
	if (r->mode != M_DONE)
		return NULL;
	struct imap_response *resp = r->resp;
	r->resp = NULL;
	reset_frames(r);
	r->mode = M_LINE;
	return resp;
}

struct imap_reader *imap_reader_new(const struct imap_limits *limits)
{
	struct imap_reader *r = xcalloc(1, sizeof(*r));
	r->lim = *limits;
	r->nframes = 1;
	r->frames = xcalloc(1, sizeof(*r->frames));
	return r;
}

void imap_reader_free(struct imap_reader **rp)
{
	struct imap_reader *r = *rp;
	if (!r)
		return;
	drop(r);
	for (size_t i = 0; i < r->nframes; i++)
		free(r->frames[i].v);
	free(r->frames);
	buf_free(&r->line);
	free(r);
	*rp = NULL;
}

void imap_reader_set_limits(struct imap_reader *r, const struct imap_limits *limits)
{
	r->lim = *limits;
}

void imap_reader_set_sink(struct imap_reader *r, const struct imap_sink *sink)
{
	if (sink) {
		BUG_ON(!sink->open || !sink->write);
		r->sink = *sink;
	} else {
		memset(&r->sink, 0, sizeof(r->sink));
	}
}

const struct err *imap_reader_err(const struct imap_reader *r)
{
	return &r->err;
}

void imap_reader_reset(struct imap_reader *r)
{
	drop(r);
	err_clear(&r->err);
}
