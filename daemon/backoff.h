/* How long an account waits after a failure before it connects again, and
 * why. Besides the network and refused credentials it knows the limits big
 * providers put on an account, from the words they use (docs/ARCHITECTURE.md,
 * "The daemon"): Office 365 names the wait ("Request is throttled. Suggested
 * Backoff Time: N milliseconds"), Gmail says "Account exceeded command or
 * bandwidth limits" (a daily quota: waiting minutes does not help) or "Too
 * many simultaneous connections" (other clients hold them).
 * Pure: the caller passes the random value for the jitter. */
#ifndef MF_BACKOFF_H
#define MF_BACKOFF_H

#include "core/err.h"

#include <stdbool.h>
#include <stdint.h>

enum backoff_reason {
	BACKOFF_FAILURE,     /* network, server down or busy: 1 s doubling to 5 min */
	BACKOFF_AUTH,        /* credentials refused: 15 min */
	BACKOFF_SUGGESTED,   /* the server named the wait (Office 365) */
	BACKOFF_BANDWIDTH,   /* the account's bandwidth or command quota is spent (Gmail) */
	BACKOFF_CONNECTIONS, /* the server takes no more connections for the account */
	BACKOFF_THROTTLED,   /* the server slows the account down without saying how long */
};

struct backoff {
	enum backoff_reason reason;
	uint64_t ms;
};

/* The wait after the failures-th failure in a row (1: the first) that ended
 * with err. rnd is a uniformly random value: it spreads an ordinary wait by
 * +-25%, and a wait the server imposes by up to +25% (never sooner). */
struct backoff backoff_decide(const struct err *err, unsigned failures, uint32_t rnd);
/* A uniformly random value for backoff_decide. */
uint32_t backoff_random(void);
/* A word for the log's reason= ("failure", "auth", "throttled", ...). */
const char *backoff_reason_name(enum backoff_reason reason);
/* A sentence for the user: why the account waits. */
const char *backoff_why(enum backoff_reason reason);
/* err is a limit the server puts on the account: the account waits even if
 * part of the sync went through, since going on would only be refused. */
bool backoff_server_limit(const struct err *err);

#endif
