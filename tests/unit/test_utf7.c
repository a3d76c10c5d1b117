/* Modified UTF-7: round trips with non-ASCII names, and strict refusals. */
#include "check.h"
#include "core/buf.h"
#include "imap/utf7.h"

#include <errno.h>

static void roundtrip(const char *utf8, const char *mutf7)
{
	struct buf b = {0};
	struct err e = {0};
	CHECK_INT(imap_utf7_encode(&b, utf8, strlen(utf8), &e), 0);
	CHECK_STR(buf_str(&b), mutf7);
	buf_reset(&b);
	CHECK_INT(imap_utf7_decode(&b, mutf7, strlen(mutf7), &e), 0);
	CHECK_STR(buf_str(&b), utf8);
	buf_free(&b);
}

static void test_roundtrip(void)
{
	roundtrip("", "");
	roundtrip("INBOX", "INBOX");
	roundtrip("Entw\xc3\xbcrfe", "Entw&APw-rfe");
	roundtrip("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", "&ZeVnLIqe-");
	roundtrip("&", "&-");
	roundtrip("A & B &", "A &- B &-");
	roundtrip("&&", "&-&-");
	/* RFC 3501 5.1.3's example. */
	roundtrip("~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
	          "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
	/* Emoji: a surrogate pair. */
	roundtrip("\xf0\x9f\x93\xa7 Mail", "&2D3c5w- Mail");
	roundtrip("x\xf0\x9f\x98\x80\xf0\x9f\x98\x80y", "x&2D3eANg93gA-y");
	/* Base64 runs of each padding length, a run right before "&-". */
	roundtrip("\xc3\xa4", "&AOQ-");
	roundtrip("\xc3\xa4\xc3\xb6", "&AOQA9g-");
	roundtrip("\xc3\xa4\xc3\xb6\xc3\xbc", "&AOQA9gD8-");
	roundtrip("\xc3\xa4&", "&AOQ-&-");
	/* Control characters and DEL are encoded too. */
	roundtrip("a\tb\x7f", "a&AAk-b&AH8-");
	roundtrip("[Gmail]/Gesendet", "[Gmail]/Gesendet");
	roundtrip("\xef\xbf\xbd", "&,,0-");
}

static void bad_decode(const char *in, size_t len, const char *msg)
{
	struct buf b = {0};
	struct err e = {0};
	buf_puts(&b, "keep");
	CHECK_INT(imap_utf7_decode(&b, in, len, &e), -EILSEQ);
	CHECK_STR(e.msg, msg);
	CHECK_STR(buf_str(&b), "keep");
	buf_free(&b);
}

static void test_decode_errors(void)
{
	bad_decode("a&", 2, "invalid modified UTF-7 at offset 1: base64 run without a closing '-'");
	bad_decode("&AOQ", 4,
	           "invalid modified UTF-7 at offset 0: base64 run without a closing '-'");
	bad_decode("&AOQ.", 5,
	           "invalid modified UTF-7 at offset 4: character not allowed in base64");
	bad_decode("&AO/-", 5,
	           "invalid modified UTF-7 at offset 3: character not allowed in base64");
	bad_decode("&AOR-", 5,
	           "invalid modified UTF-7 at offset 4: non-zero padding bits in base64");
	bad_decode("&AOQA-", 6, "invalid modified UTF-7 at offset 5: superfluous base64 character");
	bad_decode("&A-", 3, "invalid modified UTF-7 at offset 2: superfluous base64 character");
	bad_decode("&AOQ-&APY-", 10,
	           "invalid modified UTF-7 at offset 5: base64 run right after another ('-&')");
	bad_decode("&AGE-", 5,
	           "invalid modified UTF-7 at offset 3: printable ASCII written in base64");
	bad_decode("&ACY-", 5,
	           "invalid modified UTF-7 at offset 3: printable ASCII written in base64");
	bad_decode("&AAA-", 5, "invalid modified UTF-7 at offset 3: U+0000 in a mailbox name");
	bad_decode("&2D0-", 5,
	           "invalid modified UTF-7 at offset 4: high surrogate at the end of a base64 run");
	bad_decode("&2D0AYQ-", 8,
	           "invalid modified UTF-7 at offset 6: high surrogate not "
	           "followed by a low surrogate");
	bad_decode("&3gA-", 5,
	           "invalid modified UTF-7 at offset 3: low surrogate without a high surrogate");
	bad_decode("Entw\xc3\xbcrfe", 9,
	           "invalid modified UTF-7 at offset 4: byte outside printable ASCII");
	bad_decode("a\tb", 3, "invalid modified UTF-7 at offset 1: byte outside printable ASCII");
	bad_decode("a\0b", 3, "invalid modified UTF-7 at offset 1: byte outside printable ASCII");
}

static void bad_encode(const char *in, size_t len, size_t off, const char *what)
{
	struct buf b = {0};
	struct err e = {0};
	CHECK_INT(imap_utf7_encode(&b, in, len, &e), -EILSEQ);
	char want[128];
	snprintf(want, sizeof(want), "invalid modified UTF-7 at offset %zu: %s", off, what);
	CHECK_STR(e.msg, want);
	CHECK_INT(b.len, 0);
	CHECK(!imap_utf8_valid(in, len));
	buf_free(&b);
}

static void test_encode_errors(void)
{
	bad_encode("a\xc0\xafz", 4, 1, "invalid UTF-8");       /* overlong '/' */
	bad_encode("\xe0\x80\xaf", 3, 0, "invalid UTF-8");     /* overlong, 3 bytes */
	bad_encode("\xf0\x80\x80\xaf", 4, 0, "invalid UTF-8"); /* overlong, 4 bytes */
	bad_encode("\xed\xa0\x80", 3, 0, "invalid UTF-8");     /* surrogate U+D800 */
	bad_encode("\xf4\x90\x80\x80", 4, 0, "invalid UTF-8"); /* above U+10FFFF */
	bad_encode("ab\xc3", 3, 2, "invalid UTF-8");           /* truncated */
	bad_encode("\xe6\x97", 2, 0, "invalid UTF-8");
	bad_encode("\x80", 1, 0, "invalid UTF-8");
	bad_encode("\xc3\xa4\xff", 3, 2, "invalid UTF-8");
	bad_encode("a\0b", 3, 1, "NUL in a mailbox name");
	CHECK(imap_utf8_valid("Entw\xc3\xbcrfe \xf0\x9f\x93\xa7", 14));
}

/* Every BMP code point and a spread of others survive both directions. */
static void test_all_code_points(void)
{
	struct buf utf8 = {0}, enc = {0}, dec = {0};
	struct err e = {0};
	for (uint32_t cp = 1; cp <= 0x10ffff; cp += cp < 0x10000 ? 1 : 97) {
		if (cp >= 0xd800 && cp <= 0xdfff)
			continue;
		buf_reset(&utf8);
		buf_reset(&enc);
		buf_reset(&dec);
		char s[4];
		size_t n;
		if (cp < 0x80) {
			s[0] = (char)cp, n = 1;
		} else if (cp < 0x800) {
			s[0] = (char)(0xc0 | cp >> 6), s[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
		} else if (cp < 0x10000) {
			s[0] = (char)(0xe0 | cp >> 12), s[1] = (char)(0x80 | (cp >> 6 & 0x3f));
			s[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
		} else {
			s[0] = (char)(0xf0 | cp >> 18), s[1] = (char)(0x80 | (cp >> 12 & 0x3f));
			s[2] = (char)(0x80 | (cp >> 6 & 0x3f)), s[3] = (char)(0x80 | (cp & 0x3f));
			n = 4;
		}
		buf_puts(&utf8, "x");
		buf_append(&utf8, s, n);
		buf_append(&utf8, s, n);
		if (imap_utf7_encode(&enc, utf8.data, utf8.len, &e) != 0 ||
		    imap_utf7_decode(&dec, enc.data, enc.len, &e) != 0 || dec.len != utf8.len ||
		    memcmp(dec.data, utf8.data, utf8.len) != 0) {
			fprintf(stderr, "code point U+%04X fails: %s\n", cp, e.msg);
			check_failures++;
			break;
		}
	}
	buf_free(&utf8);
	buf_free(&enc);
	buf_free(&dec);
}

int main(void)
{
	RUN(test_roundtrip);
	RUN(test_decode_errors);
	RUN(test_encode_errors);
	RUN(test_all_code_points);
	CHECK_DONE();
}
