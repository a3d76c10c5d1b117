#include "backoff.h"

#include "core/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define SECOND_MS 1000ULL
#define MINUTE_MS (60 * SECOND_MS)
/* A suggested wait is taken within these bounds: a zero would loop, and a
 * wait of days is better asked again after an hour. */
#define SUGGESTED_MIN_MS SECOND_MS
#define SUGGESTED_MAX_MS (60 * MINUTE_MS)

/* Each reason's waits: first, doubling with each failure in a row up to max,
 * then spread by rnd from -down% to +up%. A wait the server imposes is never
 * shortened; an ordinary one is spread both ways so that many clients cut off
 * together do not come back together. */
static const struct schedule {
	const char *name, *why;
	uint64_t first, max;
	unsigned down, up;
} schedules[] = {
	[BACKOFF_FAILURE] = { "failure", "connecting again after a pause", SECOND_MS, 5 * MINUTE_MS,
			      25, 25 },
	[BACKOFF_AUTH] = { "auth", "the server refused the credentials; not retrying sooner",
			   15 * MINUTE_MS, 15 * MINUTE_MS, 0, 0 },
	[BACKOFF_SUGGESTED] = { "throttled", "the server throttles this account and named the wait",
				0, 0, 0, 10 },
	/* Gmail's quota is per day (about 2.5 GB of downloads): minutes do not
	 * help, and every refused login counts against the account too. */
	[BACKOFF_BANDWIDTH] = { "bandwidth",
				"the server says the account used up its bandwidth or command "
				"limit (Gmail: about 2.5 GB of downloads a day); waiting long "
				"before trying again",
				30 * MINUTE_MS, 120 * MINUTE_MS, 0, 25 },
	[BACKOFF_CONNECTIONS] = { "connections",
				  "the server takes no more connections for this account: other "
				  "mail clients hold them",
				  10 * SECOND_MS, 5 * MINUTE_MS, 0, 25 },
	[BACKOFF_THROTTLED] = { "throttled", "the server slows this account down", 30 * SECOND_MS,
				5 * MINUTE_MS, 0, 25 },
};

/* What servers write when they limit an account, matched ignoring case in a
 * temporary failure's text (with the response code, when there was one). */
static const struct {
	const char *words;
	enum backoff_reason reason;
} phrases[] = {
	/* Gmail, as NO [ALERT] at login, NO [OVERQUOTA] or BYE mid-session */
	{ "exceeded command or bandwidth limits", BACKOFF_BANDWIDTH },
	{ "too many simultaneous connections", BACKOFF_CONNECTIONS }, /* Gmail */
	/* Dovecot's mail_max_userip_connections, under [UNAVAILABLE] */
	{ "maximum number of connections", BACKOFF_CONNECTIONS },
	{ "too many connections", BACKOFF_CONNECTIONS },
	/* Office 365 without a time; Gmail's [THROTTLED] */
	{ "throttl", BACKOFF_THROTTLED },
	{ "rate limit", BACKOFF_THROTTLED },
};

/* Office 365: "Request is throttled. Suggested Backoff Time: N milliseconds". */
static bool suggested_ms(const char *msg, uint64_t *ms)
{
	static const char key[] = "Suggested Backoff Time:";
	const char *p = strcasestr(msg, key);
	if (!p)
		return false;
	p += sizeof(key) - 1;
	while (*p == ' ')
		p++;
	if (*p < '0' || *p > '9')
		return false;
	char *end;
	unsigned long long n = strtoull(p, &end, 10); /* saturates: bounded below */
	*ms = n < SUGGESTED_MIN_MS ? SUGGESTED_MIN_MS : n > SUGGESTED_MAX_MS ? SUGGESTED_MAX_MS : n;
	return true;
}

static enum backoff_reason reason_of(const struct err *err, uint64_t *suggested)
{
	if (err->cls == ERR_AUTH)
		return BACKOFF_AUTH;
	if (err->cls != ERR_TEMP)
		return BACKOFF_FAILURE;
	if (suggested_ms(err->msg, suggested))
		return BACKOFF_SUGGESTED;
	for (size_t i = 0; i < ARRAY_SIZE(phrases); i++)
		if (strcasestr(err->msg, phrases[i].words))
			return phrases[i].reason;
	return BACKOFF_FAILURE;
}

static uint64_t spread(uint64_t ms, uint32_t rnd, unsigned down, unsigned up)
{
	uint64_t low = ms - ms * down / 100, width = ms * (down + up) / 100;
	return low + ((width * rnd) >> 32); /* width stays far below 2^32 */
}

struct backoff backoff_decide(const struct err *err, unsigned failures, uint32_t rnd)
{
	uint64_t ms = 0;
	enum backoff_reason reason = reason_of(err, &ms);
	const struct schedule *s = &schedules[reason];
	if (reason != BACKOFF_SUGGESTED) {
		ms = s->first;
		for (unsigned i = 1; i < failures && ms < s->max; i++)
			ms *= 2;
		if (ms > s->max)
			ms = s->max;
	}
	return (struct backoff){ reason, spread(ms, rnd, s->down, s->up) };
}

uint32_t backoff_random(void)
{
	uint32_t rnd;
	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != sizeof(rnd))
		rnd = (uint32_t)rand();
	return rnd;
}

const char *backoff_reason_name(enum backoff_reason reason)
{
	return schedules[reason].name;
}

const char *backoff_why(enum backoff_reason reason)
{
	return schedules[reason].why;
}

bool backoff_server_limit(const struct err *err)
{
	uint64_t ms;
	enum backoff_reason reason = reason_of(err, &ms);
	return reason != BACKOFF_FAILURE && reason != BACKOFF_AUTH;
}
