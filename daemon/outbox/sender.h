/* Draining an account's outbox over SMTP: every message that is due goes out
 * over one connection, reused for the whole queue. A message the server took
 * is filed into the Sent folder (marked \Seen, so the IMAP sync files it on
 * the server) or removed when sent = ""; a transient failure (4xx, network)
 * waits and is tried again with backoff; a permanent one (5xx, a malformed
 * message) stays in the outbox, failed, with the reason. The order of
 * durable steps and what a crash at each means is in outbox/status.h and
 * docs/OUTBOX.md: nothing is sent twice by mailferry's own doing. */
#ifndef MF_OUTBOX_SENDER_H
#define MF_OUTBOX_SENDER_H

#include "config/config.h"
#include "watch/watch.h"

#include <stdint.h>
#include <uv.h>

struct outbox_report {
	unsigned sent, failed, waiting; /* this drain: sent, failed for good, left queued */
	unsigned filed;			/* Sent copies made (the Sent folder has news) */
	unsigned queued_total, failed_total; /* in the outbox afterwards */
	int64_t next_try;	 /* Unix time the earliest waiting message is due; 0: none */
	int rc;			 /* 0, or the drain's own failure (connection, disk) */
	struct err err;
};

typedef void (*outbox_done_cb)(void *ctx, const struct outbox_report *r);

struct outbox_sender;

/* a (with an smtp block) is borrowed for the sender's life; watch (may be
 * NULL) is told of the sender's own file changes. */
struct outbox_sender *outbox_sender_new(uv_loop_t *loop, const struct account_conf *a,
					struct watch *watch);
/* Sends what is due (force: also what waits for a retry time). done runs
 * once, from the loop; a drain asked for while one runs is folded into it. */
void outbox_drain(struct outbox_sender *s, bool force, outbox_done_cb done, void *ctx);
/* The ID (base name) of the message on the wire now, or NULL. */
const char *outbox_sender_current(const struct outbox_sender *s);

/* A recipient the server refused while the message went to the others; the
 * message has left the outbox, so the sender keeps the last few of these
 * for mailferryctl outbox. */
#define OUTBOX_REFUSALS_KEPT 16
struct outbox_refusal {
	int64_t when; /* Unix time */
	char id[128], subject[128], rcpt[256];
	char reply[512]; /* "550 5.1.1 ..." */
};
/* The kept refusals, oldest first; *n is how many. */
const struct outbox_refusal *outbox_sender_refusals(const struct outbox_sender *s, size_t *n);

/* Stops (a message being sent is cut off before its final "."); frees s
 * when nothing runs any more. NULL-safe. */
void outbox_sender_free(struct outbox_sender **sp);

#endif
