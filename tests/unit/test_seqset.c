/* UID sets: parsing, normalization, membership, iteration, bounded formatting. */
#include "check.h"
#include "core/buf.h"
#include "core/xalloc.h"
#include "imap/seqset.h"

#include <errno.h>

static char *fmt(const struct imap_seqset *s)
{
	struct buf b = {0};
	CHECK_INT(imap_seqset_format(&b, s, 0, SIZE_MAX), s->n);
	return buf_steal(&b);
}

static void parses(const char *in, uint32_t star, const char *want, uint64_t count)
{
	struct imap_seqset s = {0};
	struct err e = {0};
	CHECK_INT(imap_seqset_parse(&s, in, strlen(in), star, &e), 0);
	char *got = fmt(&s);
	CHECK_STR(got, want);
	CHECK(imap_seqset_count(&s) == count);
	free(got);
	imap_seqset_free(&s);
}

static void refuses(const char *in, uint32_t star, const char *msg)
{
	struct imap_seqset s = {0};
	struct err e = {0};
	CHECK_INT(imap_seqset_parse(&s, in, strlen(in), star, &e), -EINVAL);
	CHECK_STR(e.msg, msg);
	CHECK_INT(s.n, 0);
	imap_seqset_free(&s);
}

static void test_parse(void)
{
	parses("1:5,7,9:*", 20, "1:5,7,9:20", 18);
	parses("1:5,7,9:*", 3, "1:9", 9); /* "9:*" with * = 3 is 3:9 */
	parses("1:2,9:*", 4, "1:2,4:9", 8);
	parses("1,9:*", 4, "1,4:9", 7);
	parses("5:1", 0, "1:5", 5);
	parses("*", 42, "42", 1);
	parses("*:1", 2, "1:2", 2);
	parses("3,1,2", 0, "1:3", 3);
	parses("10:20,15:25,26,1", 0, "1,10:26", 18);
	parses("4294967295", 0, "4294967295", 1);
	parses("1:4294967295,7", 0, "1:4294967295", 4294967295ull);
	parses("7,7,7", 0, "7", 1);
	refuses("", 0, "invalid sequence set at offset 0: expected a number or '*'");
	refuses("1,", 0, "invalid sequence set at offset 2: expected a number or '*'");
	refuses(",1", 0, "invalid sequence set at offset 0: expected a number or '*'");
	refuses("1:", 0, "invalid sequence set at offset 2: expected a number or '*'");
	refuses("0", 0, "invalid sequence set at offset 1: 0 is not a valid number");
	refuses("1:0", 0, "invalid sequence set at offset 3: 0 is not a valid number");
	refuses("4294967296", 0, "invalid sequence set at offset 9: number above 4294967295");
	refuses("1:*", 0, "invalid sequence set at offset 2: '*' is not allowed here");
	refuses("1 2", 0, "invalid sequence set at offset 1: expected ',' or ':'");
	refuses("1:2:3", 0, "invalid sequence set at offset 3: expected ',' or ':'");
	refuses("a", 0, "invalid sequence set at offset 0: expected a number or '*'");
}

static void test_contains_iter(void)
{
	struct imap_seqset s = {0};
	struct err e = {0};
	CHECK_INT(imap_seqset_parse(&s, "2:4,10,20:21,4294967295", 23, 0, &e), 0);
	CHECK(!imap_seqset_contains(&s, 1) && imap_seqset_contains(&s, 2));
	CHECK(imap_seqset_contains(&s, 4) && !imap_seqset_contains(&s, 5));
	CHECK(imap_seqset_contains(&s, 10) && !imap_seqset_contains(&s, 11));
	CHECK(imap_seqset_contains(&s, 21) && !imap_seqset_contains(&s, 22));
	CHECK(imap_seqset_contains(&s, 4294967295u) && !imap_seqset_contains(&s, 0));
	struct imap_seqset_iter it;
	uint32_t v, got[16];
	size_t n = 0;
	imap_seqset_iter_init(&it, &s);
	while (imap_seqset_iter_next(&it, &v) && n < 16)
		got[n++] = v;
	CHECK_INT(n, 7);
	CHECK(got[0] == 2 && got[2] == 4 && got[3] == 10 && got[5] == 21);
	CHECK(got[6] == 4294967295u);
	CHECK(!imap_seqset_iter_next(&it, &v));
	imap_seqset_free(&s);
	imap_seqset_iter_init(&it, &s);
	CHECK(!imap_seqset_iter_next(&it, &v));
	CHECK(!imap_seqset_contains(&s, 1));
	CHECK(imap_seqset_count(&s) == 0);
}

static void test_from_sorted(void)
{
	struct imap_seqset s = {0};
	uint32_t uids[] = {1, 2, 3, 3, 5, 7, 8, 9, 100, 4294967294u, 4294967295u};
	imap_seqset_from_sorted(&s, uids, ARRAY_SIZE(uids));
	char *got = fmt(&s);
	CHECK_STR(got, "1:3,5,7:9,100,4294967294:4294967295");
	free(got);
	CHECK(imap_seqset_count(&s) == 10);
	imap_seqset_from_sorted(&s, uids, 0);
	CHECK_INT(s.n, 0);
	imap_seqset_free(&s);
}

/* Splitting into bounded pieces loses nothing and keeps every piece short. */
static void test_format_split(void)
{
	struct imap_seqset s = {0};
	uint32_t *uids = malloc(30000 * sizeof(*uids));
	size_t n = 0;
	for (uint32_t u = 1; n < 30000; u += (u % 7) ? 1 : 3)
		uids[n++] = u * 13;
	imap_seqset_from_sorted(&s, uids, n);
	for (size_t max = IMAP_SEQSET_RANGE_MAX; max < 5000; max = max * 3 + 1) {
		struct imap_seqset back = {0}, piece = {0};
		struct buf all = {0};
		size_t next = 0, pieces = 0;
		struct err e = {0};
		while (next < s.n) {
			struct buf b = {0};
			size_t after = imap_seqset_format(&b, &s, next, max);
			CHECK(after > next);
			CHECK(b.len <= max);
			CHECK_INT(imap_seqset_parse(&piece, b.data, b.len, 0, &e), 0);
			CHECK_INT(piece.n, after - next);
			if (all.len)
				buf_putc(&all, ',');
			buf_append(&all, b.data, b.len);
			buf_free(&b);
			next = after;
			pieces++;
		}
		CHECK(pieces > 1);
		CHECK_INT(imap_seqset_parse(&back, all.data, all.len, 0, &e), 0);
		CHECK_INT(back.n, s.n);
		CHECK(back.n == s.n && memcmp(back.ranges, s.ranges, s.n * sizeof(*s.ranges)) == 0);
		imap_seqset_free(&back);
		imap_seqset_free(&piece);
		buf_free(&all);
	}
	/* The tightest bound still takes the widest range. */
	struct buf b = {0};
	CHECK_INT(imap_seqset_parse(&s, "1:4294967295", 12, 0, &(struct err){0}), 0);
	CHECK_INT(imap_seqset_format(&b, &s, 0, IMAP_SEQSET_RANGE_MAX), 1);
	CHECK_STR(buf_str(&b), "1:4294967295");
	CHECK_INT(imap_seqset_format(&b, &s, 1, IMAP_SEQSET_RANGE_MAX), 1);
	buf_free(&b);
	imap_seqset_free(&s);
	free(uids);
}

int main(void)
{
	RUN(test_parse);
	RUN(test_contains_iter);
	RUN(test_from_sorted);
	RUN(test_format_split);
	CHECK_DONE();
}
