/* One complete sync of an account: list the folders of both sides, match
 * them (sync/folders.h), create and remove folders as the config allows,
 * then sync every folder pair (sync/folder.h) over up to max_connections
 * connections. --once runs one pass per account; the daemon runs a pass at
 * start and after reconnects, and single folder jobs for push events. */
#ifndef MF_SYNC_PASS_H
#define MF_SYNC_PASS_H

#include "config/config.h"
#include "core/buf.h"
#include "state/state.h"
#include "sync/folder.h"
#include "sync/pool.h"

#include <stdbool.h>
#include <stdint.h>

struct pass_opts {
	bool allow_mass_delete;
	/* Only these folders (server names, NULL-terminated; NULL: all). The
	 * folder list is still read, so new folders are found. */
	char *const *only;
	/* Scan every Maildir even where its directory times say nothing changed
	 * (after the watcher lost events). */
	bool force_scan;
	/* The daemon's Maildir watcher, told of the engine's own changes. */
	struct watch *watch;
	/* The daemon holds fresh copies of known messages this long (a move
	 * may be arriving in two halves); --once does not wait. */
	unsigned hold_copies_ms;
};

struct pass_result {
	int rc;			  /* 0, or the first failure's negative errno */
	struct err err;		  /* the first failure (each one is logged) */
	unsigned failures;	  /* folders (or steps) that failed */
	unsigned folders;	  /* folder pairs synced */
	unsigned skipped;	  /* pairs found unchanged by LIST-STATUS */
	unsigned moves;		  /* moves made by the reader, carried out as UID MOVE */
	struct folder_stats sum;  /* totals over the folders */
	uint64_t ms;		  /* wall time */
	struct buf new_mail;	  /* folders that got new messages, one per line */
};

typedef void (*pass_done_cb)(void *ctx, const struct pass_result *r);

/* Runs one pass; pool, st and a are borrowed until done runs (once, from the
 * loop). */
void sync_pass(uv_loop_t *loop, struct sync_pool *pool, struct state *st,
	       const struct account_conf *a, const struct pass_opts *o, pass_done_cb done,
	       void *ctx);

#endif
