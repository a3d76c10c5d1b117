/* Server -> Maildir push: which folders changed on the server, as soon as
 * the server says so. NOTIFY (RFC 5465) on one connection for every folder
 * where the server offers it; otherwise IDLE (RFC 2177) on each folder of the
 * account's `idle` list, one connection each. Either way the connection
 * re-enters IDLE every few minutes, which keeps it alive through NAT and
 * finds a dead one (the DONE must be answered within the timeout). Folders
 * without push are left to the account's polling. Push connections come from
 * the account's pool and count toward max_connections; one is always left
 * for syncing. */
#ifndef MF_SYNC_PUSH_H
#define MF_SYNC_PUSH_H

#include "config/config.h"
#include "sync/pool.h"

/* folder: the server name of a folder that changed, or NULL when the folder
 * list itself changed (a folder created, deleted or renamed) or the news
 * named a folder in a way we could not read: then every folder is looked at. */
typedef void (*push_event_cb)(void *ctx, const char *folder);
/* Push stopped (a connection died, a command was refused); err says why.
 * Runs once; the push object is then inert until push_free. */
typedef void (*push_down_cb)(void *ctx, const struct err *err);

struct push;

struct push *push_start(uv_loop_t *loop, struct sync_pool *pool, const struct account_conf *a,
			push_event_cb event, push_down_cb down, void *ctx);
/* Leaves IDLE, gives the connections back and frees p. NULL-safe. */
void push_free(struct push **pp);
/* "NOTIFY", "IDLE", or "none" (polling only). */
const char *push_mode(const struct push *p);

#endif
