/* The POP3 response parser: status lines and their codes, listings, streamed
 * messages (dot-unstuffing, CRLF to LF), limits, and the listing-line
 * helpers. Every transcript is fed whole, byte by byte and split at random
 * points, and must give the same items each way. */
#include "check.h"

#include "core/buf.h"
#include "pop3/parse.h"

#include <errno.h>

struct run {
	struct buf log;  /* one line per item */
	struct buf body; /* the streamed bytes of the current block */
	int fail_after;  /* the sink fails once it holds more than this (0: never) */
};

static int sink_write(void *ctx, const char *p, size_t n, struct err *e)
{
	struct run *r = ctx;
	CHECK(n > 0);
	buf_append(&r->body, p, n);
	if (r->fail_after && r->body.len > (size_t)r->fail_after)
		return err_set(e, -ENOSPC, ERR_LOCAL, "disk full");
	return 0;
}

static void log_item(struct run *r, const struct pop3_item *it)
{
	static const char *const kinds[] = { "OK", "ERR", "CONT", "LINE", "END" };
	CHECK_INT(strlen(it->text), it->len);
	buf_printf(&r->log, "%s", kinds[it->kind]);
	if (it->code[0])
		buf_printf(&r->log, " [%s]", it->code);
	buf_printf(&r->log, " <%s>\n", it->text);
	if (it->kind == POP3_END && r->body.len) {
		buf_puts(&r->log, "BODY ");
		buf_put_visible(&r->log, buf_str(&r->body));
		buf_putc(&r->log, '\n');
		buf_reset(&r->body);
	}
}

/* Feeds in[0..len) in chunks (step 0: whole; step > 0: that many bytes at a
 * time; step < 0: random sizes). plan has one letter per status line: 'S'
 * single line, 'L' a multi-line listing after +OK, 'D' a streamed message
 * after +OK (budget bytes). Returns the log; an error ends it with "FAIL". */
static char *feed(const char *in, size_t len, const char *plan, int step, uint64_t budget,
		  int fail_after)
{
	struct run r = { .fail_after = fail_after };
	struct pop3_reader *rd = pop3_reader_new();
	struct pop3_sink sink = { sink_write, &r };
	size_t pos = 0;
	unsigned seed = (unsigned)len * 7919u + 17u;
	while (pos < len) {
		size_t n = len - pos;
		if (step > 0 && (size_t)step < n)
			n = (size_t)step;
		if (step < 0) {
			seed = seed * 1103515245u + 12345u;
			size_t c = 1 + (seed >> 16) % 23;
			n = c < n ? c : n;
		}
		size_t off = 0;
		while (off < n) {
			struct pop3_item it;
			size_t used;
			enum pop3_res res =
			    pop3_reader_feed(rd, in + pos + off, n - off, &used, &it);
			off += used;
			if (res == POP3_FAIL) {
				buf_printf(&r.log, "FAIL %s\n", pop3_reader_err(rd)->msg);
				goto out;
			}
			if (res == POP3_MORE) {
				CHECK_INT(off, n);
				break;
			}
			log_item(&r, &it);
			char what = *plan ? *plan : 'S';
			if (it.kind == POP3_OK || it.kind == POP3_ERR || it.kind == POP3_CONT)
				plan += *plan != '\0';
			if (it.kind == POP3_OK && what != 'S')
				pop3_reader_multi(rd, what == 'D' ? &sink : NULL, budget);
		}
		pos += n;
	}
out:
	pop3_reader_free(&rd);
	buf_free(&r.body);
	return buf_steal(&r.log);
}

/* The whole, byte-by-byte and random-split runs agree; returns the log. */
static char *feed_all(const char *in, const char *plan, uint64_t budget)
{
	size_t len = strlen(in);
	char *whole = feed(in, len, plan, 0, budget, 0);
	char *bytes = feed(in, len, plan, 1, budget, 0);
	char *split = feed(in, len, plan, -1, budget, 0);
	CHECK_STR(bytes, whole);
	CHECK_STR(split, whole);
	free(bytes);
	free(split);
	return whole;
}

static void expect(const char *in, const char *plan, const char *want)
{
	char *got = feed_all(in, plan, 1 << 20);
	CHECK_STR(got, want);
	free(got);
}

static void test_status_lines(void)
{
	expect("+OK Dovecot ready. <1.2@host>\r\n", "S", "OK <Dovecot ready. <1.2@host>>\n");
	expect("+OK\r\n", "S", "OK <>\n");
	expect("+ok lower case\r\n", "S", "OK <lower case>\n");
	expect("-ERR [IN-USE] mailbox locked\r\n", "S", "ERR [IN-USE] <mailbox locked>\n");
	expect("-ERR [SYS/TEMP] try later\r\n", "S", "ERR [SYS/TEMP] <try later>\n");
	expect("-ERR [AUTH]\r\n", "S", "ERR [AUTH] <>\n");
	/* A bracket that opens no code is text. */
	expect("-ERR [not a code] x\r\n", "S", "ERR <[not a code] x>\n");
	expect("-ERR [unclosed\r\n", "S", "ERR <[unclosed>\n");
	expect("+ \r\n", "S", "CONT <>\n");
	expect("+\r\n", "S", "CONT <>\n");
	expect("+ dGVzdA==\r\n", "S", "CONT <dGVzdA==>\n");
	/* Bare LF line ends are taken too. */
	expect("+OK one\n-ERR two\n", "SS", "OK <one>\nERR <two>\n");
}

static void test_bad_status(void)
{
	expect("* OK IMAP4rev1 ready\r\n", "S",
	       "FAIL not a POP3 status line: \"* OK IMAP4rev1 ready\"\n");
	expect("+OKAY\r\n", "S", "FAIL not a POP3 status line: \"+OKAY\"\n");
	expect("\r\n", "S", "FAIL not a POP3 status line\n");
	expect("HTTP/1.1 400 Bad Request\r\n", "S",
	       "FAIL not a POP3 status line: \"HTTP/1.1 400 Bad Request\"\n");
	/* Control characters are shown escaped, never raw on a terminal. */
	expect("\x1b[31mred\r\n", "S", "FAIL not a POP3 status line: \"\\x1b[31mred\"\n");
	char nul[] = "+OK a\0b\r\n";
	char *got = feed(nul, sizeof(nul) - 1, "S", 0, 0, 0);
	CHECK_STR(got, "FAIL the server sent a NUL byte in a line: \"+OK a\\x00b\"\n");
	free(got);
	/* A line that never ends fails at the limit instead of growing. */
	struct buf big = { 0 };
	buf_puts(&big, "+OK ");
	for (int i = 0; i < POP3_MAX_LINE; i++)
		buf_putc(&big, 'x');
	got = feed_all(buf_str(&big), "S", 0);
	CHECK(strncmp(got, "FAIL the server sent a line that is too long: \"+OK xxx", 54) == 0);
	free(got);
	buf_free(&big);
	/* After a failure the reader takes nothing until a reset. */
	struct pop3_reader *rd = pop3_reader_new();
	struct pop3_item it;
	size_t used;
	CHECK_INT(pop3_reader_feed(rd, "bad\r\n", 5, &used, &it), POP3_FAIL);
	CHECK_INT(pop3_reader_feed(rd, "+OK\r\n", 5, &used, &it), POP3_FAIL);
	CHECK_INT(used, 0);
	pop3_reader_reset(rd);
	CHECK_INT(pop3_reader_feed(rd, "+OK fine\r\n", 10, &used, &it), POP3_DONE);
	CHECK_INT(used, 10);
	CHECK_STR(it.text, "fine");
	pop3_reader_free(&rd);
}

static void test_listing(void)
{
	expect("+OK capabilities\r\nTOP\r\nUIDL\r\nSASL PLAIN LOGIN\r\n..odd\r\n.\r\n+OK next\r\n",
	       "LS",
	       "OK <capabilities>\nLINE <TOP>\nLINE <UIDL>\nLINE <SASL PLAIN LOGIN>\n"
	       "LINE <.odd>\nEND <>\nOK <next>\n");
	/* -ERR opens no block, whatever the command was. */
	expect("-ERR no CAPA here\r\n+OK\r\n", "LS", "ERR <no CAPA here>\nOK <>\n");
	/* An empty listing. */
	expect("+OK 0 messages\r\n.\r\n", "L", "OK <0 messages>\nEND <>\n");
	/* A listing that never ends is cut at its budget. */
	struct buf endless = { 0 };
	buf_puts(&endless, "+OK here it comes\r\n");
	for (int i = 0; i < 2000; i++)
		buf_printf(&endless, "%d line of an endless listing\r\n", i);
	char *got = feed(endless.data, endless.len, "L", 0, 4096, 0);
	CHECK(strstr(got, "FAIL the server's response went on past 4096 bytes") != NULL);
	free(got);
	got = feed(endless.data, endless.len, "L", 1, 4096, 0);
	CHECK(strstr(got, "FAIL the server's response went on past 4096 bytes") != NULL);
	free(got);
	buf_free(&endless);
}

static void test_stream(void)
{
	/* Dot-stuffing undone, CRLF and bare LF become LF, a lone CR stays. */
	expect("+OK 120 octets\r\n"
	       "Subject: hi\r\n"
	       "\r\n"
	       "..leading dot\r\n"
	       ". space after dot\r\n"
	       "bare lf\n"
	       "a\rb\r\n"
	       "..\r\n"
	       "end\r\n"
	       ".\r\n"
	       "+OK 2nd\r\n",
	       "DS",
	       "OK <120 octets>\nEND <>\n"
	       "BODY Subject: hi\\x0a\\x0a.leading dot\\x0a space after dot\\x0abare lf\\x0a"
	       "a\\x0db\\x0a.\\x0aend\\x0a\n"
	       "OK <2nd>\n");
	/* An empty message, and one whose last line has no line end before the dot
	 * line (impossible on the wire: the dot line starts a line). */
	expect("+OK\r\n.\r\n+OK\r\nx\r\n.\n", "DD", "OK <>\nEND <>\nOK <>\nEND <>\nBODY x\\x0a\n");
	/* ".\r" followed by something else: the dot was stuffing, the CR is data. */
	expect("+OK\r\n.\rX\r\n.\r\n", "D", "OK <>\nEND <>\nBODY \\x0dX\\x0a\n");
	/* A message longer than its budget fails. */
	struct buf big = { 0 };
	buf_puts(&big, "+OK\r\n");
	for (int i = 0; i < 1000; i++)
		buf_puts(&big, "0123456789012345678901234567890123456789\r\n");
	buf_puts(&big, ".\r\n");
	char *got = feed(big.data, big.len, "D", 0, 10000, 0);
	CHECK_STR(got, "OK <>\nFAIL the server's response went on past 10000 bytes\n");
	free(got);
	got = feed(big.data, big.len, "D", -1, 10000, 0);
	CHECK_STR(got, "OK <>\nFAIL the server's response went on past 10000 bytes\n");
	free(got);
	/* Exactly the budget is fine. */
	got = feed(big.data, big.len, "D", 7, big.len - 5, 0);
	CHECK(strncmp(got, "OK <>\nEND <>\nBODY 0123", 22) == 0);
	free(got);
	/* A failing sink fails the parse with its own error. */
	got = feed(big.data, big.len, "D", 0, 1 << 20, 100);
	CHECK_STR(got, "OK <>\nFAIL disk full\n");
	free(got);
	buf_free(&big);
}

/* A large message split at every chunk size gives the same bytes. */
static void test_stream_sizes(void)
{
	struct buf in = { 0 }, want = { 0 };
	buf_puts(&in, "+OK\r\n");
	for (int i = 0; i < 3000; i++) {
		buf_printf(&in, "%s%d\r\n", i % 7 == 0 ? ".." : "", i);
		buf_printf(&want, "%s%d\n", i % 7 == 0 ? "." : "", i);
	}
	buf_puts(&in, ".\r\n");
	for (int step = 1; step < 40; step += 3) {
		struct run r = { 0 };
		struct pop3_reader *rd = pop3_reader_new();
		struct pop3_sink sink = { sink_write, &r };
		size_t pos = 0;
		int ends = 0;
		while (pos < in.len) {
			size_t n = in.len - pos < (size_t)step ? in.len - pos : (size_t)step;
			size_t off = 0, used;
			struct pop3_item it;
			while (off < n) {
				enum pop3_res res =
				    pop3_reader_feed(rd, in.data + pos + off, n - off, &used, &it);
				off += used;
				CHECK(res != POP3_FAIL);
				if (res != POP3_DONE)
					break;
				if (it.kind == POP3_OK)
					pop3_reader_multi(rd, &sink, 1 << 20);
				ends += it.kind == POP3_END;
			}
			pos += n;
		}
		CHECK_INT(ends, 1);
		CHECK_INT(r.body.len, want.len);
		CHECK(r.body.len == want.len && memcmp(r.body.data, want.data, want.len) == 0);
		buf_free(&r.body);
		buf_free(&r.log);
		pop3_reader_free(&rd);
	}
	buf_free(&in);
	buf_free(&want);
}

static void test_helpers(void)
{
	uint32_t n;
	uint64_t size;
	const char *uid;
	size_t ulen;
	CHECK_INT(pop3_parse_stat("2 320", &n, &size), 0);
	CHECK_INT(n, 2);
	CHECK_INT(size, 320);
	CHECK_INT(pop3_parse_stat("0 0 octets", &n, &size), 0);
	CHECK_INT(pop3_parse_stat("x 0", &n, &size), -EPROTO);
	CHECK_INT(pop3_parse_stat("2", &n, &size), -EPROTO);
	CHECK_INT(pop3_parse_stat("99999999999 1", &n, &size), -EPROTO);
	CHECK_INT(pop3_parse_list("3 1200", &n, &size), 0);
	CHECK_INT(n, 3);
	CHECK_INT(size, 1200);
	CHECK_INT(pop3_parse_list("0 1200", &n, &size), -EPROTO);
	CHECK_INT(pop3_parse_list("3 -1", &n, &size), -EPROTO);
	CHECK_INT(pop3_parse_list("3 12a", &n, &size), -EPROTO);
	CHECK_INT(pop3_parse_uidl("1 000000014f1b2c3d", &n, &uid, &ulen), 0);
	CHECK_INT(n, 1);
	CHECK_INT(ulen, 16);
	CHECK(strncmp(uid, "000000014f1b2c3d", ulen) == 0);
	CHECK_INT(pop3_parse_uidl("7 whoa  ", &n, &uid, &ulen), 0);
	CHECK_INT(ulen, 4);
	CHECK_INT(pop3_parse_uidl("7 two words", &n, &uid, &ulen), -EPROTO);
	CHECK_INT(pop3_parse_uidl("7 ", &n, &uid, &ulen), -EPROTO);
	CHECK_INT(pop3_parse_uidl("7 caf\xc3\xa9", &n, &uid, &ulen), -EPROTO);
	CHECK_INT(pop3_parse_uidl("0 abc", &n, &uid, &ulen), -EPROTO);
	char long_id[80];
	memset(long_id, 'a', sizeof(long_id));
	long_id[0] = '1';
	long_id[1] = ' ';
	long_id[72] = '\0'; /* 70 characters: the most RFC 1939 allows */
	CHECK_INT(pop3_parse_uidl(long_id, &n, &uid, &ulen), 0);
	long_id[72] = 'a';
	long_id[73] = '\0';
	CHECK_INT(pop3_parse_uidl(long_id, &n, &uid, &ulen), -EPROTO);
}

int main(void)
{
	RUN(test_status_lines);
	RUN(test_bad_status);
	RUN(test_listing);
	RUN(test_stream);
	RUN(test_stream_sizes);
	RUN(test_helpers);
	CHECK_DONE();
}
