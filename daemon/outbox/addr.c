#include "outbox/addr.h"

#include "core/buf.h"
#include "core/xalloc.h"

#include <string.h>
#include <strings.h>

void addr_add(struct addr_list *list, const char *addr)
{
	size_t len = strlen(addr);
	while (len && (addr[0] == ' ' || addr[0] == '\t'))
		addr++, len--;
	while (len && (addr[len - 1] == ' ' || addr[len - 1] == '\t'))
		len--;
	if (len >= 2 && addr[0] == '<' && addr[len - 1] == '>')
		addr++, len -= 2;
	if (!len)
		return;
	for (size_t i = 0; i < list->n; i++)
		if (strlen(list->v[i]) == len && strncasecmp(list->v[i], addr, len) == 0)
			return;
	list->v = xgrow(list->v, &list->cap, list->n + 2, sizeof(char *));
	list->v[list->n++] = xstrndup(addr, len);
	list->v[list->n] = NULL;
}

/* Scans one mailbox (or group start) of an address list, from *pp, into
 * out; returns what ended it: ',', ';', ':' (a group's name) or '\0'. A
 * mailbox is the text in <...> when there is one, else the bare text. */
static char scan_one(const char **pp, struct buf *out)
{
	const char *p = *pp;
	struct buf bare = { 0 };
	bool angle = false, in_angle = false;
	int comment = 0;
	char end = '\0';
	for (; *p; p++) {
		char c = *p;
		if (comment) {
			comment += c == '(' ? 1 : c == ')' ? -1 : 0;
			if (c == '\\' && p[1])
				p++;
			continue;
		}
		if (c == '"' && !in_angle) { /* a quoted display name or local part */
			buf_putc(&bare, c);
			for (p++; *p && *p != '"'; p++) {
				if (*p == '\\' && p[1])
					buf_putc(&bare, *p++);
				buf_putc(&bare, *p);
			}
			if (*p)
				buf_putc(&bare, '"');
			else
				p--;
			continue;
		}
		if (c == '(') {
			comment = 1;
		} else if (c == '<') {
			angle = in_angle = true;
			buf_reset(out);
		} else if (c == '>' && in_angle) {
			in_angle = false;
		} else if (in_angle) {
			if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
				buf_putc(out, c);
		} else if (c == ',' || c == ';' || c == ':') {
			end = c;
			p++;
			break;
		} else if (c != '\r' && c != '\n') {
			buf_putc(&bare, c);
		}
	}
	if (!angle && end != ':') {
		buf_reset(out);
		buf_puts(out, buf_str(&bare));
	}
	buf_free(&bare);
	*pp = p;
	return end;
}

void addr_parse_list(struct addr_list *list, const char *s)
{
	struct buf one = { 0 };
	const char *p = s;
	while (*p) {
		buf_reset(&one);
		char end = scan_one(&p, &one);
		if (end != ':') {
			const char *a = buf_str(&one);
			/* A bare phrase or a broken address is not sent to. */
			struct buf trimmed = { 0 };
			const char *t = a;
			while (*t == ' ' || *t == '\t')
				t++;
			buf_puts(&trimmed, t);
			while (trimmed.len && (trimmed.data[trimmed.len - 1] == ' ' ||
					       trimmed.data[trimmed.len - 1] == '\t'))
				trimmed.data[--trimmed.len] = '\0';
			if (addr_valid(buf_str(&trimmed)))
				addr_add(list, buf_str(&trimmed));
			buf_free(&trimmed);
		}
		if (!end)
			break;
	}
	buf_free(&one);
}

void addr_list_free(struct addr_list *list)
{
	for (size_t i = 0; i < list->n; i++)
		free(list->v[i]);
	free(list->v);
	*list = (struct addr_list){ 0 };
}

bool addr_valid(const char *addr)
{
	const char *at = strrchr(addr, '@');
	if (!at || at == addr || !at[1])
		return false;
	for (const unsigned char *p = (const unsigned char *)addr; *p; p++)
		if (*p <= ' ' || *p == 0x7f || *p == '<' || *p == '>' || *p == ',')
			return false;
	return true;
}

bool addr_is_utf8(const char *addr)
{
	for (const unsigned char *p = (const unsigned char *)addr; *p; p++)
		if (*p > 127)
			return true;
	return false;
}
