#include "maildir/path.h"

#include "core/xalloc.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

static bool is_inbox(const char *name, size_t len)
{
	return len == 5 && strncasecmp(name, "INBOX", 5) == 0;
}

/* Length of the valid UTF-8 sequence (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF) starting at p[0..n), or 0. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	size_t k;
	unsigned char lo = 0x80, hi = 0xbf;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		k = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		k = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		k = 4;
	else
		return 0;
	if (p[0] == 0xe0)
		lo = 0xa0;
	else if (p[0] == 0xed)
		hi = 0x9f;
	else if (p[0] == 0xf0)
		lo = 0x90;
	else if (p[0] == 0xf4)
		hi = 0x8f;
	if (n < k || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < k; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return k;
}

static bool reserved_component(const char *c, size_t n)
{
	return n == 3 &&
	       (memcmp(c, "new", 3) == 0 || memcmp(c, "cur", 3) == 0 || memcmp(c, "tmp", 3) == 0);
}

static void put_escape(struct buf *out, unsigned char b)
{
	static const char hex[] = "0123456789ABCDEF";
	char esc[3] = { '%', hex[b >> 4], hex[b & 15] };
	buf_append(out, esc, 3);
}

/* Appends the local form of one name component c[0..n) (see path.h). */
static void put_component(struct buf *out, enum maildir_layout layout, const char *c, size_t n)
{
	if (n == 0) {
		buf_putc(out, '%');
		return;
	}
	bool verbatim = layout == MAILDIR_LAYOUT_VERBATIM;
	bool reserved = verbatim && reserved_component(c, n);
	const unsigned char *p = (const unsigned char *)c;
	size_t i = 0;
	while (i < n) {
		if (p[i] >= 0x80) {
			size_t k = utf8_len(p + i, n - i);
			if (k)
				buf_append(out, p + i, k);
			else
				put_escape(out, p[i]);
			i += k ? k : 1;
			continue;
		}
		bool esc = p[i] < 0x20 || p[i] == 0x7f || p[i] == '%' || p[i] == '/' ||
			   (p[i] == '.' && (!verbatim || i == 0)) || (i == 0 && reserved);
		if (esc)
			put_escape(out, p[i]);
		else
			buf_putc(out, (char)p[i]);
		i++;
	}
}

/* Builds the local form of name[0..len) into *out (empty on entry). */
static int encode(struct buf *out, enum maildir_layout layout, const char *name, size_t len,
		  char delim, struct err *e)
{
	if (len == 0)
		return err_set(e, -EINVAL, ERR_PERM, "empty folder name");
	bool verbatim = layout == MAILDIR_LAYOUT_VERBATIM;
	if (is_inbox(name, len)) {
		buf_puts(out, verbatim ? "INBOX" : "");
		return 0;
	}
	if (!verbatim)
		buf_putc(out, '.');
	size_t start = 0;
	for (;;) {
		const char *end = delim ? memchr(name + start, delim, len - start) : NULL;
		size_t clen = end ? (size_t)(end - name) - start : len - start;
		size_t before = out->len;
		put_component(out, layout, name + start, clen);
		if (verbatim && out->len - before > NAME_MAX)
			return err_set(e, -ENAMETOOLONG, ERR_PERM,
				       "folder name has a part of %zu bytes on disk (at most %d)",
				       out->len - before, NAME_MAX);
		if (!end)
			break;
		buf_putc(out, verbatim ? '/' : '.');
		start += clen + 1;
	}
	if (!verbatim && out->len > NAME_MAX)
		return err_set(e, -ENAMETOOLONG, ERR_PERM,
			       "folder name is %zu bytes on disk (at most %d in maildir++ layout)",
			       out->len, NAME_MAX);
	if (out->len > MAILDIR_REL_MAX)
		return err_set(e, -ENAMETOOLONG, ERR_PERM,
			       "folder name is %zu bytes on disk (at most %d)", out->len,
			       MAILDIR_REL_MAX);
	return 0;
}

int maildir_path_from_server(struct buf *out, enum maildir_layout layout, const char *name,
			     size_t len, char delim, struct err *e)
{
	struct buf local = { 0 };
	int rc = encode(&local, layout, name, len, delim, e);
	if (rc == 0)
		buf_append(out, local.data ? local.data : "", local.len);
	buf_free(&local);
	return rc;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Appends the decoded component c[0..n) to out; the delimiter must not
 * appear in it. Canonical form is checked by the caller. */
static int decode_component(struct buf *out, const char *c, size_t n, char delim, struct err *e)
{
	if (n == 1 && c[0] == '%')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char b = c[i];
		if (b == '%') {
			int hi = i + 2 < n ? hex_value(c[i + 1]) : -1;
			int lo = hi >= 0 ? hex_value(c[i + 2]) : -1;
			if (lo < 0)
				return err_set(
				    e, -EINVAL, ERR_PERM,
				    "stray '%%' in a folder name on disk (write it %%25)");
			b = (char)(hi << 4 | lo);
			i += 2;
		}
		if (delim && b == delim)
			return err_set(e, -EINVAL, ERR_PERM,
				       "a folder name on disk holds the server's hierarchy "
				       "delimiter '%c' inside one level",
				       delim);
		buf_putc(out, b);
	}
	return 0;
}

/* Decodes the components of s (separated by sep) into *out, joined by delim. */
static int decode_all(struct buf *out, const char *s, char sep, char delim, struct err *e)
{
	for (;;) {
		const char *end = strchr(s, sep);
		size_t n = end ? (size_t)(end - s) : strlen(s);
		int rc = decode_component(out, s, n, delim, e);
		if (rc < 0)
			return rc;
		if (!end)
			return 0;
		if (!delim)
			return err_set(e, -EINVAL, ERR_PERM,
				       "a nested folder on disk, but the server has no hierarchy");
		buf_putc(out, delim);
		s = end + 1;
	}
}

static int decode(struct buf *out, enum maildir_layout layout, const char *rel, char delim,
		  struct err *e)
{
	if (layout == MAILDIR_LAYOUT_VERBATIM) {
		if (!rel[0])
			return err_set(e, -EINVAL, ERR_PERM, "empty folder path");
		return decode_all(out, rel, '/', delim, e);
	}
	if (!rel[0]) {
		buf_puts(out, "INBOX");
		return 0;
	}
	if (rel[0] != '.' || strchr(rel, '/'))
		return err_set(e, -EINVAL, ERR_PERM,
			       "a maildir++ folder is a directory whose name starts with '.'");
	return decode_all(out, rel + 1, '.', delim, e);
}

int maildir_path_to_server(struct buf *out, enum maildir_layout layout, const char *rel, char delim,
			   struct err *e)
{
	struct buf name = { 0 }, back = { 0 };
	int rc = decode(&name, layout, rel, delim, e);
	if (rc == 0)
		rc = encode(&back, layout, buf_str(&name), name.len, delim, e);
	if (rc == 0 && strcmp(buf_str(&back), rel) != 0)
		rc = err_set(e, -EINVAL, ERR_PERM,
			     "a folder on disk not in the form mailferry writes (its name "
			     "would be written \"%s\")",
			     buf_str(&back));
	if (rc == 0)
		buf_append(out, name.data ? name.data : "", name.len);
	buf_free(&name);
	buf_free(&back);
	return rc;
}

const char *maildir_special_use_name(const char *attr)
{
	static const char *const names[] = { "Sent", "Drafts", "Junk", "Trash", "Archive" };
	if (!attr || attr[0] != '\\')
		return NULL;
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (strcasecmp(attr + 1, names[i]) == 0)
			return names[i];
	return NULL;
}
