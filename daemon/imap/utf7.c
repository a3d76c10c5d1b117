#include "imap/utf7.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == ',')
		return 63;
	return -1;
}

static bool printable(unsigned char c)
{
	return c >= 0x20 && c <= 0x7e;
}

static int fail(struct buf *out, size_t keep, struct err *e, size_t off, const char *what)
{
	out->len = keep;
	if (out->data)
		out->data[keep] = '\0';
	return err_set(e, -EILSEQ, ERR_PERM, "invalid modified UTF-7 at offset %zu: %s", off, what);
}

static void put_utf8(struct buf *out, uint32_t cp)
{
	char s[4];
	size_t n;
	if (cp < 0x80) {
		s[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		s[0] = (char)(0xc0 | cp >> 6);
		s[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		s[0] = (char)(0xe0 | cp >> 12);
		s[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		s[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		s[0] = (char)(0xf0 | cp >> 18);
		s[1] = (char)(0x80 | (cp >> 12 & 0x3f));
		s[2] = (char)(0x80 | (cp >> 6 & 0x3f));
		s[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	buf_append(out, s, n);
}

/* One UTF-16 unit of a base64 run; *high carries a pending high surrogate.
 * Returns NULL or the reason the unit is refused. */
static const char *take_unit(struct buf *out, uint32_t unit, uint32_t *high)
{
	if (*high) {
		if (unit < 0xdc00 || unit > 0xdfff)
			return "high surrogate not followed by a low surrogate";
		put_utf8(out, 0x10000 + ((*high - 0xd800) << 10) + (unit - 0xdc00));
		*high = 0;
		return NULL;
	}
	if (unit >= 0xd800 && unit <= 0xdbff) {
		*high = unit;
		return NULL;
	}
	if (unit >= 0xdc00 && unit <= 0xdfff)
		return "low surrogate without a high surrogate";
	if (unit == 0)
		return "U+0000 in a mailbox name";
	if (unit < 0x80 && printable((unsigned char)unit))
		return "printable ASCII written in base64";
	put_utf8(out, unit);
	return NULL;
}

/* Decodes the run starting at in[*i] == '&' (not "&-") up to its "-". */
static int decode_run(struct buf *out, size_t keep, const char *in, size_t len, size_t *i,
                      struct err *e)
{
	uint32_t acc = 0, high = 0;
	unsigned nbits = 0;
	size_t j = *i + 1;
	for (; j < len; j++) {
		int v = b64val((unsigned char)in[j]);
		if (v < 0)
			break;
		acc = acc << 6 | (uint32_t)v;
		nbits += 6;
		if (nbits >= 16) {
			nbits -= 16;
			const char *why = take_unit(out, acc >> nbits & 0xffff, &high);
			if (why)
				return fail(out, keep, e, j, why);
			acc &= (1u << nbits) - 1;
		}
	}
	if (j == len)
		return fail(out, keep, e, *i, "base64 run without a closing '-'");
	if (in[j] != '-')
		return fail(out, keep, e, j, "character not allowed in base64");
	if (nbits >= 6)
		return fail(out, keep, e, j, "superfluous base64 character");
	if (acc)
		return fail(out, keep, e, j, "non-zero padding bits in base64");
	if (high)
		return fail(out, keep, e, j, "high surrogate at the end of a base64 run");
	*i = j + 1;
	return 0;
}

int imap_utf7_decode(struct buf *out, const char *in, size_t len, struct err *e)
{
	size_t keep = out->len, i = 0;
	bool after_run = false;
	while (i < len) {
		unsigned char c = (unsigned char)in[i];
		if (!printable(c))
			return fail(out, keep, e, i, "byte outside printable ASCII");
		if (c != '&') {
			buf_putc(out, (char)c);
			i++;
			after_run = false;
		} else if (i + 1 < len && in[i + 1] == '-') {
			buf_putc(out, '&');
			i += 2;
			after_run = false;
		} else if (after_run) {
			/* RFC 3501 5.1.3: null shifts are not permitted; the two
			 * runs must be one. */
			return fail(out, keep, e, i, "base64 run right after another ('-&')");
		} else {
			int rc = decode_run(out, keep, in, len, &i, e);
			if (rc < 0)
				return rc;
			after_run = true;
		}
	}
	return 0;
}

/* Reads one strict UTF-8 sequence at in[*i]; returns the code point or -1. */
static int32_t utf8_next(const char *in, size_t len, size_t *i)
{
	unsigned char c = (unsigned char)in[*i];
	uint32_t cp, min;
	size_t n;
	if (c < 0x80) {
		(*i)++;
		return c;
	} else if (c >= 0xc2 && c <= 0xdf) {
		n = 2, cp = c & 0x1f, min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3, cp = c & 0x0f, min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4, cp = c & 0x07, min = 0x10000;
	} else {
		return -1;
	}
	if (len - *i < n)
		return -1;
	for (size_t k = 1; k < n; k++) {
		unsigned char cc = (unsigned char)in[*i + k];
		if ((cc & 0xc0) != 0x80)
			return -1;
		cp = cp << 6 | (cc & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	*i += n;
	return (int32_t)cp;
}

bool imap_utf8_valid(const char *s, size_t len)
{
	size_t i = 0;
	while (i < len)
		if (utf8_next(s, len, &i) <= 0)
			return false;
	return true;
}

struct b64w {
	struct buf *out;
	uint32_t acc;
	unsigned nbits;
};

static void put_unit(struct b64w *w, uint32_t unit)
{
	w->acc = w->acc << 16 | unit;
	w->nbits += 16;
	while (w->nbits >= 6) {
		w->nbits -= 6;
		buf_putc(w->out, b64chars[w->acc >> w->nbits & 0x3f]);
	}
	w->acc &= (1u << w->nbits) - 1;
}

/* Encodes the run of characters that cannot stand for themselves at in[*i]. */
static int encode_run(struct buf *out, size_t keep, const char *in, size_t len, size_t *i,
                      struct err *e)
{
	struct b64w w = {.out = out};
	buf_putc(out, '&');
	while (*i < len && !printable((unsigned char)in[*i])) {
		size_t at = *i;
		int32_t cp = utf8_next(in, len, i);
		if (cp < 0)
			return fail(out, keep, e, at, "invalid UTF-8");
		if (cp == 0)
			return fail(out, keep, e, at, "NUL in a mailbox name");
		if (cp >= 0x10000) {
			put_unit(&w, 0xd800 + ((uint32_t)(cp - 0x10000) >> 10));
			put_unit(&w, 0xdc00 + ((uint32_t)cp & 0x3ff));
		} else {
			put_unit(&w, (uint32_t)cp);
		}
	}
	if (w.nbits)
		buf_putc(out, b64chars[w.acc << (6 - w.nbits) & 0x3f]);
	buf_putc(out, '-');
	return 0;
}

int imap_utf7_encode(struct buf *out, const char *in, size_t len, struct err *e)
{
	size_t keep = out->len, i = 0;
	while (i < len) {
		unsigned char c = (unsigned char)in[i];
		if (c == '&') {
			buf_puts(out, "&-");
			i++;
		} else if (printable(c)) {
			buf_putc(out, (char)c);
			i++;
		} else {
			int rc = encode_run(out, keep, in, len, &i, e);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}
