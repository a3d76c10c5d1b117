/* Watching the Maildir tree with inotify, on the loop (raw inotify through
 * uv_poll, so renames keep their cookies and a queue overflow is seen). It
 * reports which folders changed, not what changed: the sync engine compares
 * a changed folder with its state anyway, and a rename between two folders
 * arrives as one batch touching both, which the engine's move detection
 * turns into a move.
 *
 * Our own writes (deliveries, flag renames, removals) must not come back as
 * a reader's changes: the engine names the files it is about to touch with
 * watch_expect, and an event on such a name is dropped once. */
#ifndef MF_WATCH_WATCH_H
#define MF_WATCH_WATCH_H

#include "core/err.h"

#include <stdbool.h>
#include <uv.h>

enum watch_what {
	WATCH_MESSAGES = 1, /* a message file came, went or was renamed in new/ or cur/ */
	WATCH_FOLDERS = 2,  /* a directory came or went under a watched tree directory */
	WATCH_OVERFLOW = 4, /* the kernel dropped events: every folder may have changed */
};

/* folder is the path given to watch_folder (or the tree directory for
 * WATCH_FOLDERS; NULL for WATCH_OVERFLOW); valid for the call only. */
typedef void (*watch_cb)(void *ctx, const char *folder, unsigned what);

struct watch;

/* Returns NULL with err set when inotify is not available (limits reached). */
struct watch *watch_new(uv_loop_t *loop, watch_cb cb, void *ctx, struct err *err);
/* NULL-safe; clears *wp; no callback runs afterwards. */
void watch_free(struct watch **wp);

/* Watches the Maildir folder at path (its new/ and cur/). Adding a watched
 * folder again does nothing. 0 or a negative errno (-ENOSPC: the user's
 * inotify watch limit, fs.inotify.max_user_watches). */
int watch_folder(struct watch *w, const char *path, struct err *err);
/* Watches dir itself for directories created or removed in it (a reader
 * creating a folder), not its subdirectories. */
int watch_tree(struct watch *w, const char *dir, struct err *err);
/* Stops watching the folder at path (its directories went away). */
void watch_forget(struct watch *w, const char *path);

/* Which way a file is about to go. */
enum watch_op {
	WATCH_ARRIVE, /* created, or renamed to this name */
	WATCH_LEAVE,  /* removed, or renamed away from this name */
};
/* The next event of kind op on name (a file name in new/ or cur/ of the
 * watched folder at path) within a few seconds is ours: drop it. Nothing is
 * noted for a folder not watched (no event will come to use it up). */
void watch_expect(struct watch *w, const char *path, const char *name, enum watch_op op);
/* Watches in use, for status and tests. */
unsigned watch_count(const struct watch *w);

#endif
