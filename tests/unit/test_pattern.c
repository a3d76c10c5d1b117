#include "check.h"
#include "sync/pattern.h"

static void test_basic(void)
{
	char *all[] = { "*", NULL };
	CHECK(pattern_selects(all, "INBOX", '/'));
	CHECK(pattern_selects(all, "Lists/rust", '/'));
	char *none[] = { NULL };
	CHECK(!pattern_selects(none, "INBOX", '/'));
	CHECK(!pattern_selects(NULL, "INBOX", '/'));
}

static void test_exclusions_last_match_wins(void)
{
	char *p[] = { "*", "!Trash", "!Lists/*", "Lists/rust", NULL };
	CHECK(pattern_selects(p, "INBOX", '/'));
	CHECK(!pattern_selects(p, "Trash", '/'));
	CHECK(pattern_selects(p, "Trash/old", '/')); /* "!Trash" is exact */
	CHECK(!pattern_selects(p, "Lists/go", '/'));
	CHECK(pattern_selects(p, "Lists/rust", '/'));
}

static void test_percent_stays_in_level(void)
{
	char *p[] = { "Lists/%", NULL };
	CHECK(pattern_selects(p, "Lists/rust", '/'));
	CHECK(!pattern_selects(p, "Lists/rust/old", '/'));
	CHECK(!pattern_selects(p, "Lists", '/'));
	char *dot[] = { "Lists.%", NULL };
	CHECK(pattern_selects(dot, "Lists.rust", '.'));
	CHECK(!pattern_selects(dot, "Lists.rust.old", '.'));
	char *star[] = { "Lists/*", NULL };
	CHECK(pattern_selects(star, "Lists/rust/old", '/'));
}

static void test_inbox_case(void)
{
	char *p[] = { "inbox", NULL };
	CHECK(pattern_selects(p, "INBOX", '/'));
	char *sub[] = { "INBOX/*", NULL };
	CHECK(pattern_selects(sub, "Inbox/Sub", '/'));
	char *other[] = { "inboxes", NULL };
	CHECK(!pattern_selects(other, "INBOXES", '/'));
}

static void test_utf8_and_middle_wildcards(void)
{
	char *p[] = { "*ü*", "!Entw*rfe", NULL };
	CHECK(pattern_selects(p, "Müll", '/'));
	CHECK(!pattern_selects(p, "Entwürfe", '/'));
	char *q[] = { "a*b*c", NULL };
	CHECK(pattern_selects(q, "aXXbYYc", '/'));
	CHECK(!pattern_selects(q, "aXXbYY", '/'));
}

int main(void)
{
	RUN(test_basic);
	RUN(test_exclusions_last_match_wins);
	RUN(test_percent_stays_in_level);
	RUN(test_inbox_case);
	RUN(test_utf8_and_middle_wildcards);
	CHECK_DONE();
}
