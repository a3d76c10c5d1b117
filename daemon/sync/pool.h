/* The IMAP connections of one account: opened on demand up to the account's
 * max_connections, logged in, and lent to one job at a time. While a job
 * holds a connection, the untagged data on it (EXISTS, FETCH, VANISHED...)
 * goes to that job. The sync pass borrows from it; the daemon keeps its
 * pool across passes, so connections stay open. */
#ifndef MF_SYNC_POOL_H
#define MF_SYNC_POOL_H

#include "config/config.h"
#include "imap/client.h"

#include <uv.h>

struct sync_pool;

/* Where a borrowed connection's untagged data goes. */
struct pool_user {
	void (*untagged)(void *ctx, struct imap_response *r);
	void *ctx;
};

/* c is NULL when no connection could be had; err then says why. */
typedef void (*pool_acquire_cb)(void *ctx, struct imap_client *c, const struct err *err);

/* a is borrowed for the pool's life. */
struct sync_pool *pool_new(uv_loop_t *loop, const struct account_conf *a);
/* Logs out of idle connections; lent ones are dropped when given back. done
 * (may be NULL) runs when all are gone; the pool frees itself then. */
void pool_close(struct sync_pool *p, void (*done)(void *ctx), void *ctx);
/* Drops every connection at once (shutdown in a hurry): the commands of the
 * jobs holding them fail with err, so the jobs end and give them back. */
void pool_abort(struct sync_pool *p, const struct err *err);

/* Forgets the idle connections, unannounced: after a suspend they are
 * likely dead, and a job lent one would wait out the timeout to learn it.
 * Lent ones stay with their jobs. */
void pool_drop_idle(struct sync_pool *p);

/* Lends a logged-in connection to user: an idle one, a new one while the
 * pool holds fewer than max_connections (or limit, if lower and not 0: push
 * uses it to leave room for syncing), or the next one released.
 * cb runs once, from the loop. The first connection fetches the password
 * (password_command); later ones reuse it. */
void pool_acquire(struct sync_pool *p, unsigned limit, const struct pool_user *user,
		  pool_acquire_cb cb, void *ctx);
/* Gives c back. A connection that failed is dropped instead. */
void pool_release(struct sync_pool *p, struct imap_client *c);
/* Gives c back for good: it is logged out and dropped, never lent again.
 * For a session that carries state a later user must not inherit (push's
 * NOTIFY SET: Dovecot stays silent on a connection that issues it again). */
void pool_retire(struct sync_pool *p, struct imap_client *c);
/* Connections open now (lent or idle). */
unsigned pool_size(const struct sync_pool *p);
/* cb (may be NULL) runs each time a connection has logged in (the daemon
 * tells systemd it is ready at the first). */
void pool_on_login(struct sync_pool *p, void (*cb)(void *ctx), void *ctx);
/* The capabilities of the latest connection that logged in, and whether it
 * enabled QRESYNC; false while none has. */
bool pool_caps(const struct sync_pool *p, struct imap_caps *caps, bool *qresync);

#endif
