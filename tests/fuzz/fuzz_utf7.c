/* Modified UTF-7 and mailbox quoting. Oracles: when decoding succeeds,
 * encoding the result gives the input back byte for byte; when encoding
 * succeeds, decoding gives the input back; encoding succeeds exactly for
 * valid UTF-8 without NUL; a quoted mailbox name read back by the response
 * parser and decoded is the name. */
#include "core/buf.h"
#include "imap/parse.h"
#include "imap/quote.h"
#include "imap/utf7.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static bool same(const struct buf *b, const uint8_t *p, size_t n)
{
	return b->len == n && (n == 0 || memcmp(b->data, p, n) == 0);
}

/* Parses `* LIST () "/" <name>` and returns the name as UTF-8 in out. */
static void read_back(const struct buf *name, unsigned flags, struct buf *out)
{
	struct buf line = {0};
	buf_puts(&line, "* LIST () \"/\" ");
	buf_append(&line, name->data, name->len);
	buf_puts(&line, "\r\n");
	struct imap_reader *r = imap_reader_new(&imap_limits_after_login);
	size_t used, len;
	if (imap_reader_feed(r, line.data, line.len, &used) != PARSE_DONE || used != line.len)
		abort();
	struct imap_response *resp = imap_reader_take(r);
	const char *s = resp->nargs == 3 ? imap_value_astring(&resp->args[2], &len) : NULL;
	if (!s)
		abort();
	if (flags & IMAP_QUOTE_UTF8)
		buf_append(out, s, len);
	else if (imap_utf7_decode(out, s, len, NULL) != 0)
		abort();
	imap_response_free(&resp);
	imap_reader_free(&r);
	buf_free(&line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	struct buf a = {0}, b = {0};
	struct err e;
	if (imap_utf7_decode(&a, in, size, &e) == 0) {
		if (imap_utf7_encode(&b, a.data, a.len, &e) != 0 || !same(&b, data, size))
			abort();
	} else if (a.len) {
		abort();
	}
	buf_reset(&a);
	buf_reset(&b);
	int rc = imap_utf7_encode(&a, in, size, &e);
	if ((rc == 0) != imap_utf8_valid(in, size))
		abort();
	if (rc == 0 && (imap_utf7_decode(&b, a.data, a.len, &e) != 0 || !same(&b, data, size)))
		abort();
	for (unsigned flags = 0; flags <= IMAP_QUOTE_UTF8; flags++) {
		buf_reset(&a);
		buf_reset(&b);
		if (imap_quote_mailbox(&a, in, size, flags, &e) != 0)
			continue;
		read_back(&a, flags, &b);
		if (!same(&b, data, size))
			abort();
	}
	buf_free(&a);
	buf_free(&b);
	return 0;
}
