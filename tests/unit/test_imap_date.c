#include "check.h"
#include "imap/date.h"

static void test_parse(void)
{
	time_t t;
	CHECK(imap_date_parse("17-Jul-1996 02:44:25 -0700", &t));
	CHECK_INT(t, 837596665);
	CHECK(imap_date_parse(" 1-Jan-1970 00:00:00 +0000", &t));
	CHECK_INT(t, 0);
	CHECK(imap_date_parse("29-Feb-2024 23:59:59 +0130", &t));
	CHECK_INT(t, 1709251199 - 5400);
	CHECK(imap_date_parse("01-dec-2026 10:00:00 +0000", &t));
	CHECK(!imap_date_parse("17-Jux-1996 02:44:25 -0700", &t));
	CHECK(!imap_date_parse("17-Jul-1996 02:44:25", &t));
	CHECK(!imap_date_parse("17-Jul-1996 02:44:25 -0700 trailing", &t));
	CHECK(!imap_date_parse("", &t));
}

static void test_format_round_trip(void)
{
	struct buf b = { 0 };
	imap_date_format(&b, 837596665);
	CHECK_STR(buf_str(&b), "\"17-Jul-1996 09:44:25 +0000\"");
	time_t t;
	char inner[64];
	snprintf(inner, sizeof(inner), "%.*s", (int)b.len - 2, b.data + 1);
	CHECK(imap_date_parse(inner, &t));
	CHECK_INT(t, 837596665);
	buf_free(&b);
}

int main(void)
{
	RUN(test_parse);
	RUN(test_format_round_trip);
	CHECK_DONE();
}
