/* One account's life in the daemon: a full sync at start, then push both
 * ways (the server's news through sync/push.h, the Maildir's through the
 * watcher), polling every poll_interval, and reconnecting with backoff when
 * the server or the network goes away. Every sync goes through the one sync
 * path (sync/pass.h); bursts of events are coalesced into one pass. */
#ifndef MF_ACCOUNT_H
#define MF_ACCOUNT_H

#include "config/config.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct account;

/* conf and general are borrowed until account_stop's callback. */
struct account *account_new(uv_loop_t *loop, const struct account_conf *conf,
			    const struct general_conf *general);
/* Opens the state and starts the first sync. */
void account_start(struct account *a);
/* Stops everything: a running sync is cut short (its commands fail; nothing
 * is lost, the next start resumes), connections are closed. done runs once,
 * then the account is freed. */
void account_stop(struct account *a, void (*done)(void *ctx), void *ctx);

/* Asks for a sync of folder (server name), or of every folder when NULL. */
void account_sync(struct account *a, const char *folder);

const char *account_name(const struct account *a);

#endif
