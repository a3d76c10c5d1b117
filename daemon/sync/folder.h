/* Syncing one folder pair on one IMAP connection: the one path that every
 * trigger takes (a pass of --once or of the daemon, a push event, a
 * `mailferryctl sync`). It reads the folder's state, lists the Maildir and
 * the server (incrementally where QRESYNC or CONDSTORE allow), plans with
 * sync/plan.h and carries the plan out in the durability order of
 * docs/SYNC.md. */
#ifndef MF_SYNC_FOLDER_H
#define MF_SYNC_FOLDER_H

#include "config/config.h"
#include "core/err.h"
#include "imap/client.h"
#include "state/state.h"
#include "sync/pool.h"
#include "watch/watch.h"

#include <stdbool.h>

/* What the account gives a folder job; all borrowed for the job's life. */
struct folder_ctx {
	const struct account_conf *account;
	struct state *st;
	struct state_folder *folder; /* the folder's row; the job updates it */
	const char *local_path;	     /* absolute path of the folder's Maildir */
	const char *trash;	     /* server name of the \Trash folder, or NULL */
	bool allow_mass_delete;
	bool force_scan; /* do not trust the Maildir's directory times */
	struct watch *watch; /* told of our own file changes, so they do not echo; may be NULL */
	unsigned hold_copies_ms; /* see sync/transfer.c held_as_copy; 0: upload at once */
};

struct folder_stats {
	unsigned down, up, paired;
	unsigned flags_local, flags_remote;
	unsigned del_local, del_remote;
	size_t guarded; /* deletes held back by the mass-deletion guard */
	unsigned held;	/* uploads held back: maybe half of a move */
	unsigned messages, unread;
};

/* rc 0 or a negative errno; err says why (already naming account and folder). */
typedef void (*folder_done_cb)(void *ctx, int rc, const struct err *err,
			       const struct folder_stats *stats);

struct folder_job;

struct folder_job *folder_job_new(const struct folder_ctx *fc, folder_done_cb done, void *ctx);
/* Where the untagged data of the job's connection must go (pool_acquire). */
struct pool_user folder_job_user(struct folder_job *job);
/* Runs the job on c (borrowed until done runs). done runs once, from the
 * loop; the job frees itself after it. */
void folder_job_run(struct folder_job *job, struct imap_client *c);
/* For a job that never got a connection: done runs with err, from the loop. */
void folder_job_fail(struct folder_job *job, const struct err *err);

#endif
