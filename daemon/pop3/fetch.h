/* One fetch of a POP3 account: the one entry point that mailferryd --once,
 * the daemon's polling and `mailferryctl sync` all use. A fetch is one
 * session: log in, list (STAT, UIDL, LIST), download what the state does not
 * know into the account's INBOX Maildir, delete from the server what the
 * config says may go (keep = false: everything fetched; delete_after_days:
 * what was fetched that long ago), QUIT.
 *
 * Durability, as for IMAP downloads (docs/STATE.md): a message is written
 * to tmp/, its row is committed as downloading, the batch is fsynced and
 * renamed into new/, then the row is settled; only a settled row lets the
 * message be deleted from the server, and a deletion takes effect at QUIT
 * only. A kill -9 at any instant loses nothing and fetches nothing twice.
 * docs/POP3.md states the rules (servers without UIDL included).
 * Depends on pop3/client, maildir/, state/ and config/. */
#ifndef MF_POP3_FETCH_H
#define MF_POP3_FETCH_H

#include "config/config.h"
#include "core/err.h"
#include "state/state.h"

#include <stdint.h>
#include <uv.h>

struct pop3_fetch_result {
	int rc;             /* 0, or the first failure's negative errno */
	struct err err;     /* the first failure (each one is logged) */
	unsigned failures;  /* messages or steps that failed */
	unsigned fetched;   /* new messages now in the INBOX */
	unsigned deleted;   /* messages the server removed at QUIT */
	unsigned on_server; /* messages the server holds after the session */
	uint64_t ms;        /* wall time */
};

typedef void (*pop3_fetch_cb)(void *ctx, const struct pop3_fetch_result *r);

struct pop3_fetch;

/* Starts one fetch for a (a->pop3 set) with its state st; both are borrowed
 * until done runs. done runs exactly once, from the loop. Returns the fetch,
 * valid until done runs. */
struct pop3_fetch *pop3_fetch_start(uv_loop_t *loop, struct state *st, const struct account_conf *a,
				    pop3_fetch_cb done, void *ctx);

/* Cuts a running fetch short (the daemon stops): the connection drops
 * without QUIT, so the server deletes nothing; what was committed stays and
 * the next fetch goes on from there. done runs with err, from inside this
 * call or later. */
void pop3_fetch_abort(struct pop3_fetch *f, const struct err *err);

#endif
