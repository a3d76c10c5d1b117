#include "imap/quote.h"

#include "core/xalloc.h"
#include "imap/utf7.h"

#include <errno.h>
#include <stdbool.h>
#include <strings.h>

static bool atom_safe(unsigned char c)
{
	if (c <= 0x20 || c >= 0x7f)
		return false;
	switch (c) {
	case '(':
	case ')':
	case '{':
	case '%':
	case '*':
	case '"':
	case '\\':
	case ']':
	case '[': /* legal in atoms, but a parser may take "BODY[" for a FETCH item */
		return false;
	default:
		return true;
	}
}

enum imap_quote_res imap_quote_astring(struct buf *b, const char *s, size_t len, unsigned flags)
{
	bool atom = len > 0 && !(len == 3 && strncasecmp(s, "NIL", 3) == 0);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\0' || c == '\r' || c == '\n' ||
		    (c >= 0x80 && !(flags & IMAP_QUOTE_UTF8)))
			return IMAP_QUOTE_LITERAL;
		atom = atom && atom_safe(c);
	}
	if (atom) {
		buf_append(b, s, len);
		return IMAP_QUOTE_ATOM;
	}
	buf_putc(b, '"');
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '"' || s[i] == '\\')
			buf_putc(b, '\\');
		buf_putc(b, s[i]);
	}
	buf_putc(b, '"');
	return IMAP_QUOTE_QUOTED;
}

int imap_quote_mailbox(struct buf *b, const char *name, size_t len, unsigned flags, struct err *e)
{
	if (flags & IMAP_QUOTE_UTF8) {
		if (!imap_utf8_valid(name, len))
			return err_set(e, -EILSEQ, ERR_PERM,
			               "mailbox name is not valid UTF-8 or contains NUL");
		if (imap_quote_astring(b, name, len, flags) == IMAP_QUOTE_LITERAL)
			return err_set(e, -EINVAL, ERR_PERM, "mailbox name contains CR or LF");
		return 0;
	}
	struct buf enc = {0};
	int rc = imap_utf7_encode(&enc, name, len, e);
	if (rc == 0 &&
	    imap_quote_astring(b, enc.data ? enc.data : "", enc.len, 0) == IMAP_QUOTE_LITERAL)
		BUG("modified UTF-7 output needs a literal");
	buf_free(&enc);
	return rc;
}
