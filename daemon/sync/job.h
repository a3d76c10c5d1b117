/* The inside of a folder job (sync/folder.h), shared by its files:
 * folder.c (life, SELECT, planning, the order of phases), listing.c (what the
 * server holds), transfer.c (downloads and uploads), apply.c (flags, deletes,
 * bookkeeping). Nothing outside daemon/sync/ includes this. */
#ifndef MF_SYNC_JOB_H
#define MF_SYNC_JOB_H

#include "maildir/deliver.h"
#include "maildir/digest.h"
#include "maildir/scan.h"
#include "sync/folder.h"
#include "sync/plan.h"

#include <stdint.h>

/* What the server holds: one entry per message seen in a listing. */
struct remote_vec {
	struct plan_remote *v; /* msgid strings and hashes owned (free on clear) */
	size_t n, cap;
	uint32_t *slots; /* open addressing: index + 1 of the entry of a UID, 0 empty */
	size_t nslots;
};

struct uid_vec {
	uint32_t *v;
	size_t n, cap;
};

enum listing_mode {
	LISTING_NONE,  /* untagged FETCH responses are not part of a listing */
	LISTING_FLAGS, /* UID and FLAGS of messages */
	LISTING_IDENT, /* UID, RFC822.SIZE and the Message-ID header */
	LISTING_HASH,  /* UID and the hash of the body, which streams into a digest */
	LISTING_BODY,  /* downloads: the body streams into the Maildir */
};

struct folder_job {
	struct folder_ctx fc;
	folder_done_cb done;
	void *done_ctx;
	struct imap_client *imap;
	const char *name;  /* the folder's server name (fc.folder->name) */
	const char *acct;  /* the account's name */
	unsigned inflight; /* commands of the current step not yet completed */
	int rc;		   /* the first failure of the current step */
	struct err err;

	/* the Maildir */
	struct maildir *md;
	struct maildir_scan *scan; /* NULL while the directories are known unchanged */
	bool local_unchanged;
	bool local_touched; /* we renamed, removed or delivered: rescan next time */

	/* the state: identities only where a row lacks its UID (state_msg_load_lean),
	 * the only rows that are paired by them */
	struct state_msgs rows;

	/* the server, from SELECT */
	uint32_t uidvalidity, uidnext, exists;
	bool exists_known; /* a server that never said EXISTS is listed, not trusted */
	uint64_t highestmodseq;
	bool nomodseq, have_permflags;
	bool select_qresync; /* SELECT asked for the changes since the state's modseq */
	unsigned permflags;

	/* the server, from the listing */
	enum listing_mode listing;
	struct remote_vec remote;
	struct uid_vec vanished;
	bool remote_full;

	/* the plan */
	struct plan_row *prows;
	/* Per scanned file, until step_trim; base points into scan, id.msgid and
	 * id.hash are owned (set only for files no row knows, when pairing needs
	 * them). */
	struct plan_local *plocal;
	size_t nlocal;
	struct plan plan;
	bool *ok;     /* per plan action: carried out on its side */
	bool trimmed; /* the scan keeps only the files the plan's actions touch */

	/* downloads */
	struct maildir_batch *batch;
	struct download *downloads; /* finished, waiting for the batch commit */
	size_t ndownloads, cap_downloads;
	uint64_t batch_bytes;
	struct err sink_err; /* why writing a body failed, if it did */
	bool sink_failed;

	/* uploads */
	struct upload *uploads; /* the window being sent */
	size_t nuploads, next_upload;
	bool append_uid_missing;

	struct folder_stats stats;
	unsigned phase;
};

/* folder.c */
void job_step_done(struct folder_job *job);
void job_fail(struct folder_job *job, int rc, const struct err *err);
/* Records the first failure of a command of the current step. */
void job_command_failed(struct folder_job *job, const struct imap_reply *reply);
/* The next watcher event of kind op on this file of the folder is ours. */
void job_expect(struct folder_job *job, const char *file, enum watch_op op);
/* Makes job->scan, if the job skipped it. 0 or a negative errno. */
int job_scan(struct folder_job *job, struct err *e);
/* The entry of a base name in the scan, or NULL. */
const struct maildir_entry *job_find_file(struct folder_job *job, const char *base);

/* listing.c */
void listing_untagged(struct folder_job *job, struct imap_response *r);
/* Completes the remote side after SELECT (a CONDSTORE delta or a full
 * listing as needed); calls job_step_done. */
void listing_start(struct folder_job *job);
/* Fetches Message-ID and size of the given UIDs into the remote entries. */
void listing_fetch_idents(struct folder_job *job, const uint32_t *uids, size_t n);
/* Fetches the bodies of the given UIDs (sorted) into the remote entries'
 * body hashes, never keeping a body in memory. */
void listing_fetch_hashes(struct folder_job *job, const uint32_t *uids, size_t n);
void remote_vec_clear(struct remote_vec *rv);
struct plan_remote *remote_find(struct remote_vec *rv, uint32_t uid);
void uid_vec_push(struct uid_vec *v, uint32_t uid);
/* Sends cmd_prefix + the UID set of uids[0..n) (sorted), split into commands
 * of bounded length; each completes through job_command_done. */
void job_send_uid_sets(struct folder_job *job, const uint32_t *uids, size_t n,
		       const char *before, const char *after, imap_done_cb done);
void job_command_done(void *ctx, const struct imap_reply *reply);

/* transfer.c */
void transfer_downloads(struct folder_job *job);
void transfer_uploads(struct folder_job *job);
void transfer_free(struct folder_job *job);
void transfer_fetch_response(struct folder_job *job, struct imap_response *r);

/* apply.c */
void apply_pairs(struct folder_job *job);
void apply_push_flags(struct folder_job *job);
void apply_local_flags(struct folder_job *job);
void apply_save_flags(struct folder_job *job);
void apply_delete_local(struct folder_job *job);
void apply_delete_remote(struct folder_job *job);

#endif
