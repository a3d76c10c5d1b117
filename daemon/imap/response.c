#include "imap/response.h"

#include "core/xalloc.h"
#include "imap/response_priv.h"

#include <inttypes.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A response's strings and arrays live in a few large blocks, freed at once:
 * a SEARCH result of 100,000 numbers is then a handful of allocations. */
struct arena_block {
	struct arena_block *next;
	size_t used, size;
	alignas(8) char data[];
};

#define ARENA_BLOCK 4096
#define ARENA_OWN_BLOCK 1024 /* larger requests get a block of their own */

struct imap_response *imap_resp_new(const struct imap_sink *sink)
{
	struct imap_response *r = xcalloc(1, sizeof(*r));
	r->priv = xcalloc(1, sizeof(*r->priv));
	if (sink)
		r->priv->sink = *sink;
	return r;
}

static struct arena_block *new_block(size_t size)
{
	struct arena_block *b = xmalloc(sizeof(*b) + size);
	b->next = NULL;
	b->used = 0;
	b->size = size;
	return b;
}

void *imap_resp_alloc(struct imap_response *r, size_t n)
{
	struct imap_response_priv *p = r->priv;
	n = (n + 7) & ~(size_t)7;
	if (n >= ARENA_OWN_BLOCK) {
		/* Behind the head, so the head block keeps filling up. */
		struct arena_block *b = new_block(n);
		b->used = n;
		if (p->blocks) {
			b->next = p->blocks->next;
			p->blocks->next = b;
		} else {
			p->blocks = b;
		}
		return b->data;
	}
	if (!p->blocks || p->blocks->size - p->blocks->used < n) {
		struct arena_block *b = new_block(ARENA_BLOCK);
		b->next = p->blocks;
		p->blocks = b;
	}
	void *mem = p->blocks->data + p->blocks->used;
	p->blocks->used += n;
	return mem;
}

char *imap_resp_strndup(struct imap_response *r, const char *p, size_t n)
{
	char *s = imap_resp_alloc(r, n + 1);
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

size_t imap_resp_add_handle(struct imap_response *r, void *handle)
{
	struct imap_response_priv *p = r->priv;
	p->handles = xgrow(p->handles, &p->hcap, p->nhandles + 1, sizeof(*p->handles));
	p->handles[p->nhandles] = handle;
	return p->nhandles++;
}

void imap_resp_line_append(struct imap_response *r, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	struct imap_response_priv *p = r->priv;
	for (size_t i = 0; i < n && !p->line_cut; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
		bool plain = c >= 0x20 && c != 0x7f;
		size_t len = plain ? 1 : 4;
		if (p->line_len + len > IMAP_LINE_EXCERPT) {
			memcpy(p->line + p->line_len, "...", 3);
			p->line_len += 3;
			p->line_cut = true;
			break;
		}
		memcpy(p->line + p->line_len, plain ? (const char *)&s[i] : esc, len);
		p->line_len += len;
	}
	p->line[p->line_len] = '\0';
}

const char *imap_response_line(const struct imap_response *r)
{
	return r->priv->line;
}

const char *imap_value_atom(const struct imap_value *v)
{
	return v && v->type == IMAP_ATOM ? v->str : NULL;
}

bool imap_value_atom_eq(const struct imap_value *v, const char *name)
{
	return v && v->type == IMAP_ATOM && strcasecmp(v->str, name) == 0;
}

bool imap_value_number(const struct imap_value *v, uint64_t *out)
{
	if (!v || v->type != IMAP_NUMBER)
		return false;
	*out = v->num;
	return true;
}

const char *imap_value_string(const struct imap_value *v, size_t *len)
{
	if (!v || v->type != IMAP_STRING)
		return NULL;
	if (len)
		*len = v->len;
	return v->str;
}

const char *imap_value_astring(const struct imap_value *v, size_t *len)
{
	if (!v || (v->type != IMAP_STRING && v->type != IMAP_ATOM && v->type != IMAP_NUMBER &&
	           v->type != IMAP_NIL))
		return NULL;
	if (len)
		*len = v->len;
	return v->str;
}

bool imap_value_nstring(const struct imap_value *v, const char **s, size_t *len)
{
	if (imap_value_is_nil(v)) {
		*s = NULL;
		if (len)
			*len = 0;
		return true;
	}
	*s = imap_value_string(v, len);
	return *s != NULL;
}

bool imap_value_is_nil(const struct imap_value *v)
{
	return v && v->type == IMAP_NIL;
}

bool imap_value_list(const struct imap_value *v, const struct imap_value **items, size_t *n)
{
	if (!v || v->type != IMAP_LIST)
		return false;
	*items = v->items;
	*n = v->len;
	return true;
}

bool imap_value_sink(const struct imap_value *v, void **handle, uint64_t *size)
{
	if (!v || v->type != IMAP_SINK)
		return false;
	if (handle)
		*handle = v->handle;
	if (size)
		*size = v->num;
	return true;
}

const struct imap_value *imap_list_find(const struct imap_value *list, const char *name)
{
	const struct imap_value *items;
	size_t n;
	if (!imap_value_list(list, &items, &n))
		return NULL;
	for (size_t i = 0; i + 1 < n; i += 2)
		if (imap_value_atom_eq(&items[i], name))
			return &items[i + 1];
	return NULL;
}

const struct imap_value *imap_response_fetch(const struct imap_response *r, const char *item)
{
	if (r->kind != IMAP_RESP_UNTAGGED || !r->has_number || !r->name ||
	    strcmp(r->name, "FETCH") != 0 || r->nargs < 1)
		return NULL;
	return imap_list_find(&r->args[0], item);
}

bool imap_response_code_is(const struct imap_response *r, const char *code)
{
	return r->code && strcasecmp(r->code, code) == 0;
}

void *imap_response_take_sink(struct imap_response *r, const struct imap_value *v)
{
	struct imap_response_priv *p = r->priv;
	if (!v || v->type != IMAP_SINK || v->len >= p->nhandles || p->handles[v->len] != v->handle)
		return NULL;
	p->handles[v->len] = NULL;
	return v->handle;
}

static void format_bytes(struct buf *b, const char *s, size_t n)
{
	buf_putc(b, '"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			buf_printf(b, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			buf_printf(b, "\\x%02x", c);
		else
			buf_putc(b, (char)c);
	}
	buf_putc(b, '"');
}

void imap_value_format(struct buf *b, const struct imap_value *v)
{
	switch (v->type) {
	case IMAP_ATOM:
		buf_append(b, v->str, v->len);
		break;
	case IMAP_NUMBER:
		buf_printf(b, "%" PRIu64, v->num);
		break;
	case IMAP_NIL:
		buf_puts(b, "NIL");
		break;
	case IMAP_STRING:
		format_bytes(b, v->str, v->len);
		break;
	case IMAP_LIST:
		buf_putc(b, '(');
		for (size_t i = 0; i < v->len; i++) {
			if (i)
				buf_putc(b, ' ');
			imap_value_format(b, &v->items[i]);
		}
		buf_putc(b, ')');
		break;
	case IMAP_SINK:
		buf_printf(b, "<sink %" PRIu64 ">", v->num);
		break;
	}
}

static void format_values(struct buf *b, const struct imap_value *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		buf_putc(b, ' ');
		imap_value_format(b, &v[i]);
	}
}

void imap_response_format(struct buf *b, const struct imap_response *r)
{
	if (r->kind == IMAP_RESP_CONTINUE)
		buf_putc(b, '+');
	else
		buf_puts(b, r->kind == IMAP_RESP_TAGGED ? r->tag : "*");
	if (r->has_number)
		buf_printf(b, " %" PRIu64, r->number);
	if (r->name)
		buf_printf(b, " %s", r->name);
	if (r->code) {
		buf_printf(b, " [%s", r->code);
		format_values(b, r->code_args, r->ncode_args);
		buf_putc(b, ']');
	}
	if (r->text && *r->text)
		buf_printf(b, " %s", r->text);
	format_values(b, r->args, r->nargs);
}

void imap_response_free(struct imap_response **rp)
{
	struct imap_response *r = *rp;
	if (!r)
		return;
	struct imap_response_priv *p = r->priv;
	for (size_t i = 0; i < p->nhandles; i++)
		if (p->handles[i] && p->sink.abort)
			p->sink.abort(p->sink.ctx, p->handles[i]);
	while (p->blocks) {
		struct arena_block *next = p->blocks->next;
		free(p->blocks);
		p->blocks = next;
	}
	free(p->handles);
	free(p);
	free(r);
	*rp = NULL;
}
