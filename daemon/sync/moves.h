/* Moves made by the reader: a message that left one folder's Maildir and
 * turned up in another (a rename keeps its base name; a save writes a new
 * file with rewritten headers, recognised by Message-ID and body hash)
 * becomes one UID MOVE on the server (COPY, \Deleted and EXPUNGE where MOVE
 * is missing), never a delete plus an upload. Runs before the folder jobs of
 * a pass, because a move touches two folders; also finishes moves a crash
 * interrupted (state rows in STATE_MOVING). */
#ifndef MF_SYNC_MOVES_H
#define MF_SYNC_MOVES_H

#include "config/config.h"
#include "state/state.h"
#include "sync/pool.h"

struct moves_folder {
	struct state_folder *row; /* borrowed */
	const char *path;	  /* absolute Maildir path */
	bool hold;		  /* out: a move from or to it is unresolved; do not sync it now */
};

/* moved: moves carried out; rc 0 or the first failure (logged already). */
typedef void (*moves_done_cb)(void *ctx, unsigned moved, int rc, const struct err *err);

/* Detects and carries out moves among folders[0..n); all borrowed until done
 * runs (once, from the loop). */
void moves_run(struct sync_pool *pool, struct state *st, const struct account_conf *a,
	       struct moves_folder *folders, size_t n, moves_done_cb done, void *ctx);

#endif
