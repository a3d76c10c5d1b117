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

/* What the daemon hears of an account. */
struct account_events {
	/* Its state (account_status) changed: a pass ended, it backs off, it
	 * was paused or resumed. */
	void (*changed)(void *ctx, struct account *a);
	/* Once per account: its first connection logged in, or its first pass
	 * ended without one (offline at start). */
	void (*ready)(void *ctx, struct account *a);
	void *ctx;
};

/* conf and general are borrowed until account_stop's callback; ev is copied. */
struct account *account_new(uv_loop_t *loop, const struct account_conf *conf,
			    const struct general_conf *general, const struct account_events *ev);
/* Opens the state and starts the first sync. */
void account_start(struct account *a);
/* Stops everything: a running sync is cut short (its commands fail; nothing
 * is lost, the next start resumes), connections are closed. done runs once,
 * then the account is freed. */
void account_stop(struct account *a, void (*done)(void *ctx), void *ctx);

/* Asks for a sync of folder (server name), or of every folder when NULL. */
void account_sync(struct account *a, const char *folder);

/* The same, and done (if not NULL) runs once the pass that carries it out
 * ends: rc 0, or the pass's first failure in err. allow_mass_delete lets that
 * pass delete beyond max_delete_share. */
typedef void (*account_done_cb)(void *ctx, int rc, const struct err *err);
void account_sync_then(struct account *a, const char *folder, bool allow_mass_delete,
		       account_done_cb done, void *ctx);

/* Paused: no sync starts, and push news is dropped, until account_resume,
 * which syncs every folder. */
void account_pause(struct account *a);
void account_resume(struct account *a);

struct account_status {
	const char *name;
	const char *protocol; /* "imap" or "pop3" */
	const char *state;    /* "starting", "syncing", "idle", "backoff", "paused", "failed" */
	const char *push;     /* "NOTIFY", "IDLE", "none", "starting" */
	int64_t last_sync;    /* Unix time of the last pass without a failure; 0: none yet */
	const char *last_error; /* "" when the last pass had none */
	uint64_t retry_in_ms; /* in backoff: until the next attempt */
	unsigned connections;
	/* The extensions in use, space-separated ("NOTIFY QRESYNC CONDSTORE
	 * MOVE UIDPLUS"); "" before the first login. */
	char caps[64];
	struct state *st;     /* the account's state, for per-folder figures; may be NULL */
};
void account_status(const struct account *a, struct account_status *out);

const char *account_name(const struct account *a);
/* The account's SMTP outbox (daemon/outbox_queue.h); NULL without an smtp block. */
struct outbox_queue *account_outbox(const struct account *a);

#endif
