/* daemon/backoff.c: the waits after a failure, for the texts real servers
 * send when they limit an account. */
#include "check.h"

#include "backoff.h"

#include <errno.h>
#include <stdio.h>

#define S 1000ULL
#define MIN (60 * S)
/* rnd values: the low end, the middle and the high end of the jitter */
#define LOW 0U
#define MID 0x80000000U
#define HIGH 0xffffffffU

static struct err temp(const char *msg)
{
	struct err e = { .cls = ERR_TEMP, .code = -EPROTO };
	snprintf(e.msg, sizeof(e.msg), "%s", msg);
	return e;
}

static struct backoff decide(enum err_class cls, const char *msg, unsigned failures, uint32_t rnd)
{
	struct err e = temp(msg);
	e.cls = cls;
	return backoff_decide(&e, failures, rnd);
}

static void test_failure_doubles_to_five_minutes(void)
{
	const char *msg = "imap.example.test:993: connection refused";
	static const uint64_t want[] = { 1 * S,  2 * S,   4 * S,   8 * S,   16 * S, 32 * S,
					 64 * S, 128 * S, 256 * S, 5 * MIN, 5 * MIN };
	for (unsigned i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct backoff b = decide(ERR_TEMP, msg, i + 1, MID);
		CHECK_INT(b.reason, BACKOFF_FAILURE);
		CHECK_INT(b.ms, want[i]);
	}
	CHECK_INT(decide(ERR_TEMP, msg, 1000000, MID).ms, 5 * MIN); /* no overflow */
	CHECK_INT(decide(ERR_TEMP, msg, 0, MID).ms, 1 * S);
	CHECK_STR(backoff_reason_name(BACKOFF_FAILURE), "failure");
}

static void test_failure_jitter_both_ways(void)
{
	const char *msg = "the server closed the connection";
	CHECK_INT(decide(ERR_TEMP, msg, 3, LOW).ms, 3 * S);         /* 4 s - 25% */
	CHECK_INT(decide(ERR_TEMP, msg, 3, HIGH).ms, 5 * S - 1);    /* 4 s + 25%, exclusive */
	CHECK_INT(decide(ERR_TEMP, msg, 20, LOW).ms, 225 * S);      /* 5 min - 25% */
	CHECK_INT(decide(ERR_TEMP, msg, 20, HIGH).ms, 375 * S - 1); /* 5 min + 25% */
	CHECK_INT(decide(ERR_PERM, msg, 1, MID).reason, BACKOFF_FAILURE);
	CHECK_INT(decide(ERR_LOCAL, msg, 1, MID).reason, BACKOFF_FAILURE);
}

static void test_auth_waits_fifteen_minutes(void)
{
	const char *msg = "x:993: authentication failed: NO [AUTHENTICATIONFAILED] Invalid "
			  "credentials (Failure)";
	for (unsigned f = 1; f < 5; f++) {
		struct backoff b = decide(ERR_AUTH, msg, f, f % 2 ? LOW : HIGH);
		CHECK_INT(b.reason, BACKOFF_AUTH);
		CHECK_INT(b.ms, 15 * MIN);
	}
	CHECK(strstr(backoff_why(BACKOFF_AUTH), "refused the credentials") != NULL);
	CHECK(!backoff_server_limit(&(struct err){ .cls = ERR_AUTH, .msg = "throttled" }));
}

/* Office 365 as seen in the wild, as NO and as BAD. */
static void test_office365_suggested_wait(void)
{
	struct backoff b = decide(ERR_TEMP,
				  "outlook.office365.com:993: UID FETCH: NO Request is throttled. "
				  "Suggested Backoff Time: 299609 milliseconds",
				  1, LOW);
	CHECK_INT(b.reason, BACKOFF_SUGGESTED);
	CHECK_INT(b.ms, 299609);
	CHECK_STR(backoff_reason_name(b.reason), "throttled");
	/* never sooner, at most 10% later; the failure count does not matter */
	b = decide(ERR_TEMP,
		   "SELECT: BAD Request is throttled. Suggested Backoff Time: 89117 "
		   "milliseconds",
		   7, HIGH);
	CHECK_INT(b.reason, BACKOFF_SUGGESTED);
	CHECK(b.ms >= 89117 && b.ms <= 89117 + 8912);
	b = decide(ERR_TEMP, "suggested backoff time:3000 milliseconds", 1, MID);
	CHECK_INT(b.ms, 3000 + 150);
	struct err e = temp("LOGIN: NO Request is throttled. Suggested Backoff Time: 4000 "
			    "milliseconds");
	CHECK(backoff_server_limit(&e));
}

static void test_office365_bounds(void)
{
	/* zero would loop; days are asked again after an hour; digits that
	 * overflow saturate */
	CHECK_INT(decide(ERR_TEMP, "Suggested Backoff Time: 0 milliseconds", 1, LOW).ms, 1 * S);
	CHECK_INT(decide(ERR_TEMP, "Suggested Backoff Time: 86400000 milliseconds", 1, LOW).ms,
		  60 * MIN);
	CHECK_INT(decide(ERR_TEMP, "Suggested Backoff Time: 99999999999999999999999999", 1, LOW).ms,
		  60 * MIN);
	/* no number: throttled all the same, with a wait of our own */
	struct backoff b =
	    decide(ERR_TEMP, "NO Request is throttled. Suggested Backoff Time: soon", 1, LOW);
	CHECK_INT(b.reason, BACKOFF_THROTTLED);
	CHECK_INT(b.ms, 30 * S);
	b = decide(ERR_TEMP, "Suggested Backoff Time: -5 milliseconds", 1, LOW);
	CHECK_INT(b.reason, BACKOFF_FAILURE);
}

/* Gmail's daily quota, at login, under [OVERQUOTA] and as BYE mid-session. */
static void test_gmail_bandwidth(void)
{
	static const char *const texts[] = {
		"imap.gmail.com:993: login refused for now: NO [ALERT] Account exceeded command "
		"or bandwidth limits. (Failure)",
		"folder INBOX: imap.gmail.com:993: UID FETCH: NO [OVERQUOTA] Account exceeded "
		"command or bandwidth limits.",
		"imap.gmail.com:993: the server closed the connection: Account exceeded command "
		"or bandwidth limits.",
	};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct backoff b = decide(ERR_TEMP, texts[i], 1, LOW);
		CHECK_INT(b.reason, BACKOFF_BANDWIDTH);
		CHECK_INT(b.ms, 30 * MIN);
		struct err e = temp(texts[i]);
		CHECK(backoff_server_limit(&e));
	}
	CHECK_INT(decide(ERR_TEMP, texts[0], 2, LOW).ms, 60 * MIN);
	CHECK_INT(decide(ERR_TEMP, texts[0], 3, LOW).ms, 120 * MIN);
	CHECK_INT(decide(ERR_TEMP, texts[0], 9, LOW).ms, 120 * MIN);
	CHECK_INT(decide(ERR_TEMP, texts[0], 9, HIGH).ms, 150 * MIN - 1);
	CHECK(strstr(backoff_why(BACKOFF_BANDWIDTH), "bandwidth") != NULL);
	/* a real storage quota refused as PERM is not a wait */
	CHECK_INT(decide(ERR_PERM, "APPEND: NO [OVERQUOTA] Mailbox is full", 1, MID).reason,
		  BACKOFF_FAILURE);
}

static void test_connection_limits(void)
{
	static const char *const texts[] = {
		/* Gmail, 15 connections per account */
		"imap.gmail.com:993: login refused for now: NO [ALERT] Too many simultaneous "
		"connections. (Failure)",
		/* Dovecot's mail_max_userip_connections */
		"x:143: login refused for now: NO [UNAVAILABLE] Maximum number of connections "
		"from user+IP exceeded (mail_max_userip_connections=10)",
		"x:143: LOGIN: NO [LIMIT] Too many connections",
	};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct backoff b = decide(ERR_TEMP, texts[i], 1, LOW);
		CHECK_INT(b.reason, BACKOFF_CONNECTIONS);
		CHECK_INT(b.ms, 10 * S);
	}
	CHECK_INT(decide(ERR_TEMP, texts[0], 2, LOW).ms, 20 * S);
	CHECK_INT(decide(ERR_TEMP, texts[0], 30, LOW).ms, 5 * MIN);
	CHECK_INT(decide(ERR_TEMP, texts[0], 1, HIGH).ms, 12500 - 1);
	CHECK(strstr(backoff_why(BACKOFF_CONNECTIONS), "other mail clients") != NULL);
}

static void test_throttled_without_time(void)
{
	static const char *const texts[] = {
		"x: SELECT: NO [THROTTLED] slow down",
		"x: LOGIN: NO Request is throttled.",
		"x: UID FETCH: NO [LIMIT] UID FETCH Rate limit hit.",
	};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct backoff b = decide(ERR_TEMP, texts[i], 1, LOW);
		CHECK_INT(b.reason, BACKOFF_THROTTLED);
		CHECK_INT(b.ms, 30 * S);
	}
	CHECK_INT(decide(ERR_TEMP, texts[0], 5, LOW).ms, 5 * MIN);
}

/* The server's words count only in a temporary failure: a folder or a local
 * error that happens to contain them is not a limit. */
static void test_words_only_in_temporary_failures(void)
{
	struct err e = temp("folder throttled: disk full");
	e.cls = ERR_LOCAL;
	CHECK(!backoff_server_limit(&e));
	CHECK_INT(backoff_decide(&e, 1, LOW).reason, BACKOFF_FAILURE);
	e.cls = ERR_PERM;
	snprintf(e.msg, sizeof(e.msg), "APPEND: NO Too many simultaneous connections");
	CHECK(!backoff_server_limit(&e));
	struct err plain = temp("x:993: the server closed the connection: Connection closed. 14");
	CHECK(!backoff_server_limit(&plain));
	struct err unavailable = temp("x: LIST: NO [UNAVAILABLE] Temporary system error");
	CHECK(!backoff_server_limit(&unavailable));
	CHECK_INT(backoff_decide(&unavailable, 1, MID).ms, 1 * S);
}

int main(void)
{
	RUN(test_failure_doubles_to_five_minutes);
	RUN(test_failure_jitter_both_ways);
	RUN(test_auth_waits_fifteen_minutes);
	RUN(test_office365_suggested_wait);
	RUN(test_office365_bounds);
	RUN(test_gmail_bandwidth);
	RUN(test_connection_limits);
	RUN(test_throttled_without_time);
	RUN(test_words_only_in_temporary_failures);
	CHECK_DONE();
}
