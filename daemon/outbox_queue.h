/* An account's SMTP outbox in the daemon: the sender (outbox/sender.h) lives
 * with the account, and this decides when it drains:
 *   - at start: what was queued while the daemon was stopped;
 *   - as soon as a message lands: the outbox's new/ and cur/ are watched with
 *     an inotify watcher of its own (the outbox is never synced, so its
 *     events must not reach the account's watcher and start IMAP passes);
 *   - when the account's server is back after a failure (the network is);
 *   - when the first message waiting for a retry is due (its next_try);
 *   - after a drain that failed as a whole (the SMTP server unreachable, a
 *     refused login): with the account's backoff (backoff.h: 1 s doubling to
 *     5 minutes, 15 minutes after refused credentials, what a server asks
 *     for when it throttles);
 *   - on mailferryctl outbox retry.
 * A drain asked for while one runs is folded into it. Paused with the
 * account. The ctl side (list, retry, drop, counts) is here too, so the
 * control never touches a message while it is on the wire. */
#ifndef MF_OUTBOX_QUEUE_H
#define MF_OUTBOX_QUEUE_H

#include "config/config.h"
#include "core/err.h"
#include "outbox/list.h"
#include "outbox/sender.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct outbox_queue;

/* A drain made Sent copies: the account syncs its Sent folder. */
typedef void (*outbox_filed_cb)(void *ctx);

/* conf (with an smtp block) is borrowed until outbox_queue_free. Creates
 * the outbox when missing, watches it and starts the first drain. */
struct outbox_queue *outbox_queue_start(uv_loop_t *loop, const struct account_conf *conf,
					outbox_filed_cb filed, void *ctx);
/* Stops: a message on the wire is cut off (before its final ".", or left
 * uncertain after it: the status files record which). NULL-safe; clears *qp;
 * no callback runs afterwards. */
void outbox_queue_free(struct outbox_queue **qp);

/* Drains now, whatever the backoff: the account's server answered again
 * after a failure, or the machine woke up. */
void outbox_queue_kick(struct outbox_queue *q);
/* Paused: no drain starts (one running ends); unpaused: drains. */
void outbox_queue_pause(struct outbox_queue *q, bool paused);

/* ---- for mailferryctl ---- */

struct outbox_counts {
	unsigned queued; /* waiting or being sent */
	unsigned failed;
	int64_t next_try; /* Unix time the first waiting message is due; 0: none waits */
};
int outbox_queue_counts(const struct outbox_queue *q, struct outbox_counts *c, struct err *e);
/* Every message with its status and header (outbox/list.h). */
int outbox_queue_list(const struct outbox_queue *q, struct outbox_entry **v, size_t *n,
		      struct err *e);
/* The ID of the message on the wire now, or NULL. */
const char *outbox_queue_sending(const struct outbox_queue *q);
/* Recipients refused lately while their messages went to the others. */
const struct outbox_refusal *outbox_queue_refusals(const struct outbox_queue *q, size_t *n);
/* By exact ID: the message is queued again, due now, and a drain starts
 * (unless paused). 0, -ENOENT, or the failure in e. */
int outbox_queue_retry(struct outbox_queue *q, const char *id, struct err *e);
/* By exact ID: the message is removed; -EBUSY while it is on the wire. */
int outbox_queue_drop(struct outbox_queue *q, const char *id, struct err *e);

#endif
