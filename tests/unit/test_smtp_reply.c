/* The SMTP reply parser: whole, byte by byte and split at every point. */
#include "check.h"
#include "smtp/reply.h"

struct outcome {
	enum smtp_parse res;
	int code;
	char text[512];
	size_t used_total;
};

/* Feeds s in pieces of size step (0: whole) until a reply is done or bad. */
static struct outcome parse(const char *s, size_t step)
{
	struct smtp_reply r = { 0 };
	struct outcome o = { SMTP_MORE };
	size_t len = strlen(s), off = 0;
	while (off < len && o.res == SMTP_MORE) {
		size_t n = step ? (len - off < step ? len - off : step) : len - off;
		size_t used;
		o.res = smtp_reply_feed(&r, s + off, n, &used);
		off += used;
		if (o.res == SMTP_MORE && used < n)
			break;
	}
	o.used_total = off;
	o.code = r.code;
	snprintf(o.text, sizeof(o.text), "%s", buf_str(&r.text));
	smtp_reply_free(&r);
	return o;
}

static void check_all_splits(const char *s, enum smtp_parse res, int code, const char *text)
{
	for (size_t step = 0; step <= strlen(s); step++) {
		struct outcome o = parse(s, step);
		CHECK_INT(o.res, res);
		if (res == SMTP_DONE) {
			CHECK_INT(o.code, code);
			CHECK_STR(o.text, text);
		}
	}
}

static void test_single_and_multi_line(void)
{
	check_all_splits("220 mail.example.test ESMTP\r\n", SMTP_DONE, 220, "mail.example.test ESMTP");
	check_all_splits("250-mail.example.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
			 "250 8BITMIME\r\n",
			 SMTP_DONE, 250, "mail.example.test\nPIPELINING\nSIZE 10240000\n8BITMIME");
	check_all_splits("354\r\n", SMTP_DONE, 354, "");
	check_all_splits("550 5.1.1 <x@y>: Recipient address rejected\n", SMTP_DONE, 550,
			 "5.1.1 <x@y>: Recipient address rejected");
}

static void test_stops_at_the_end_of_a_reply(void)
{
	/* pipelined replies: the first one ends where the second starts */
	const char *two = "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n";
	struct smtp_reply r = { 0 };
	size_t used;
	CHECK_INT(smtp_reply_feed(&r, two, strlen(two), &used), SMTP_DONE);
	CHECK_INT(used, 14);
	smtp_reply_reset(&r);
	CHECK_INT(smtp_reply_feed(&r, two + used, strlen(two) - used, &used), SMTP_DONE);
	CHECK_STR(buf_str(&r.text), "2.1.5 Ok");
	smtp_reply_free(&r);
}

static void test_bad_replies(void)
{
	check_all_splits("hello\r\n", SMTP_BAD, 0, "");
	check_all_splits("25\r\n", SMTP_BAD, 0, "");
	check_all_splits("2500 x\r\n", SMTP_BAD, 0, "");
	check_all_splits("600 x\r\n", SMTP_BAD, 0, "");
	check_all_splits("250-a\r\n550 b\r\n", SMTP_BAD, 0, "");
	char long_line[SMTP_LINE_MAX + 64];
	memset(long_line, 'a', sizeof(long_line));
	memcpy(long_line, "250 ", 4);
	long_line[sizeof(long_line) - 1] = '\0';
	CHECK_INT(parse(long_line, 0).res, SMTP_BAD);
}

static void test_endless_multiline_is_bounded(void)
{
	struct smtp_reply r = { 0 };
	enum smtp_parse res = SMTP_MORE;
	size_t used;
	for (int i = 0; i < 100000 && res == SMTP_MORE; i++)
		res = smtp_reply_feed(&r, "250-more more more more more more more more\r\n", 44,
				      &used);
	CHECK_INT(res, SMTP_BAD);
	CHECK(r.text.len <= SMTP_REPLY_MAX + SMTP_LINE_MAX);
	smtp_reply_free(&r);
}

int main(void)
{
	RUN(test_single_and_multi_line);
	RUN(test_stops_at_the_end_of_a_reply);
	RUN(test_bad_replies);
	RUN(test_endless_multiline_is_bounded);
	CHECK_DONE();
}
