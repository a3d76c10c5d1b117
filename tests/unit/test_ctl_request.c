/* The control protocol's request parser (daemon/ctl/request.h): whole, byte
 * by byte and split at every point; the limits; what the encoder makes. */
#include "check.h"
#include "core/buf.h"
#include "ctl/request.h"

/* The encoding of words[0..n). */
static struct buf encode(int n, char *const *words)
{
	struct buf b = { 0 };
	ctl_request_encode(&b, n, words);
	return b;
}

/* Feeds p[0..len) in pieces of at most step bytes; stops at the first answer
 * that is not CTL_MORE. */
static enum ctl_parse feed(struct ctl_request *r, const char *p, size_t len, size_t step)
{
	enum ctl_parse res = CTL_MORE;
	for (size_t off = 0; off < len && res == CTL_MORE; off += step) {
		size_t n = len - off < step ? len - off : step;
		res = ctl_request_feed(r, p + off, n);
	}
	return res;
}

static void check_words(const struct ctl_request *r, int n, char *const *want)
{
	CHECK_INT(r->nwords, n);
	for (int i = 0; i < n && i < (int)r->nwords; i++)
		CHECK_STR(r->words[i], want[i]);
	CHECK(r->words[r->nwords] == NULL);
}

static void test_round_trip(void)
{
	char *words[] = { "sync", "work", "Lists/rust und \"Co\" \xc3\xa4", "--wait" };
	struct buf b = encode(4, words);
	CHECK_INT(b.len, strlen(CTL_MAGIC) + 1 + 5 + 5 + strlen(words[2]) + 1 + 7 + 1);
	for (size_t step = 1; step <= b.len; step++) {
		struct ctl_request r = { 0 };
		CHECK_INT(feed(&r, b.data, b.len, step), CTL_DONE);
		check_words(&r, 4, words);
		ctl_request_free(&r);
	}
	buf_free(&b);
}

/* Every split into two pieces gives the same request. */
static void test_every_split(void)
{
	char *words[] = { "--json", "status", "a" };
	struct buf b = encode(3, words);
	for (size_t cut = 0; cut <= b.len; cut++) {
		struct ctl_request r = { 0 };
		enum ctl_parse first = ctl_request_feed(&r, b.data, cut);
		CHECK_INT(first, cut == b.len ? CTL_DONE : CTL_MORE);
		if (cut < b.len)
			CHECK_INT(ctl_request_feed(&r, b.data + cut, b.len - cut), CTL_DONE);
		check_words(&r, 3, words);
		ctl_request_free(&r);
	}
	buf_free(&b);
}

static void test_no_words(void)
{
	struct buf b = encode(0, NULL);
	struct ctl_request r = { 0 };
	CHECK_INT(ctl_request_feed(&r, b.data, b.len), CTL_DONE);
	CHECK_INT(r.nwords, 0);
	CHECK(r.words[0] == NULL);
	ctl_request_free(&r);
	buf_free(&b);
}

static void expect_bad(const char *p, size_t len, const char *why)
{
	struct ctl_request r = { 0 };
	CHECK_INT(feed(&r, p, len, len ? len : 1), CTL_BAD);
	CHECK_STR(r.why, why);
	/* and it stays refused */
	CHECK_INT(ctl_request_feed(&r, "x", 1), CTL_BAD);
	ctl_request_free(&r);
}

static void test_bad_magic(void)
{
	static const char http[] = "GET / HTTP/1.0\r\n\r\n\0";
	expect_bad(http, sizeof(http) - 1, "not a mailferry control request");
	static const char other[] = "mailferry/2\0status\0\0";
	expect_bad(other, sizeof(other) - 1, "not a mailferry control request");
	static const char prefix[] = "mailferry/\0status\0\0";
	expect_bad(prefix, sizeof(prefix) - 1, "not a mailferry control request");
	/* a magic word still coming is not wrong yet */
	struct ctl_request r = { 0 };
	CHECK_INT(ctl_request_feed(&r, "mailferry/1", 11), CTL_MORE);
	ctl_request_free(&r);
}

static void test_bytes_after_the_end(void)
{
	char *words[] = { "stop" };
	struct buf b = encode(1, words);
	buf_puts(&b, "more");
	expect_bad(b.data, b.len, "bytes after the end of the request");
	buf_free(&b);
}

static void test_word_limit(void)
{
	char *words[CTL_MAX_WORDS + 1];
	for (int i = 0; i <= CTL_MAX_WORDS; i++)
		words[i] = "w";
	struct buf ok = encode(CTL_MAX_WORDS, words);
	struct ctl_request r = { 0 };
	CHECK_INT(ctl_request_feed(&r, ok.data, ok.len), CTL_DONE);
	CHECK_INT(r.nwords, CTL_MAX_WORDS);
	ctl_request_free(&r);
	struct buf over = encode(CTL_MAX_WORDS + 1, words);
	expect_bad(over.data, over.len, "too many words");
	buf_free(&ok);
	buf_free(&over);
}

static void test_byte_limit(void)
{
	/* the largest request that fits */
	size_t fixed = strlen(CTL_MAGIC) + 1 + 2;
	char *big = malloc(CTL_MAX_BYTES);
	memset(big, 'a', CTL_MAX_BYTES);
	big[CTL_MAX_BYTES - fixed] = '\0';
	char *words[] = { big };
	struct buf ok = encode(1, words);
	CHECK_INT(ok.len, CTL_MAX_BYTES);
	struct ctl_request r = { 0 };
	CHECK_INT(feed(&r, ok.data, ok.len, 4096), CTL_DONE);
	CHECK_INT(strlen(r.words[0]), CTL_MAX_BYTES - fixed);
	ctl_request_free(&r);
	/* one byte more, whole or in pieces */
	big[CTL_MAX_BYTES - fixed] = 'a';
	big[CTL_MAX_BYTES - fixed + 1] = '\0';
	struct buf over = encode(1, words);
	expect_bad(over.data, over.len, "request too long");
	struct ctl_request r2 = { 0 };
	CHECK_INT(feed(&r2, over.data, over.len, 1000), CTL_BAD);
	CHECK_STR(r2.why, "request too long");
	ctl_request_free(&r2);
	/* endless bytes without a NUL are refused at the limit, not kept */
	struct ctl_request r3 = { 0 };
	enum ctl_parse res = CTL_MORE;
	size_t fed = 0;
	while (res == CTL_MORE && fed < 4 * CTL_MAX_BYTES) {
		res = ctl_request_feed(&r3, big, 1000);
		fed += 1000;
	}
	CHECK_INT(res, CTL_BAD);
	CHECK(fed <= CTL_MAX_BYTES + 1000);
	ctl_request_free(&r3);
	free(big);
	buf_free(&ok);
	buf_free(&over);
}

int main(void)
{
	RUN(test_round_trip);
	RUN(test_every_split);
	RUN(test_no_words);
	RUN(test_bad_magic);
	RUN(test_bytes_after_the_end);
	RUN(test_word_limit);
	RUN(test_byte_limit);
	CHECK_DONE();
}
