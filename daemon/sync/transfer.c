/* Message bodies both ways. Downloads stream each BODY[] literal straight
 * into a tmp/ file and make whole batches durable at once; uploads stream
 * each file into an APPEND literal (bare LF sent as CRLF). The state learns
 * of every transfer before it happens and settles it after, so a crash
 * anywhere is resolved in exactly one way (docs/STATE.md). */
#include "core/log.h"
#include "core/xalloc.h"
#include "imap/date.h"
#include "maildir/digest.h"
#include "maildir/flags.h"
#include "maildir/msgfile.h"
#include "sync/job.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* A batch is made durable when it holds this many messages or bytes. */
#define BATCH_MESSAGES 256
#define BATCH_BYTES (64u << 20)
/* APPENDs in flight at once (each holds an open file). */
#define UPLOAD_WINDOW 64

/* ---- downloads ---- */

struct sink_handle {
	struct maildir_delivery *d;
	struct maildir_digest *digest;
};

struct download {
	struct maildir_delivery *d;
	uint32_t uid;
	unsigned flags;
	uint64_t size;
	struct maildir_ident id;
};

static void *sink_open(void *ctx, const struct imap_response *partial, const char *item,
		       uint64_t size)
{
	struct folder_job *job = ctx;
	(void)size;
	if (!partial->name || strcmp(partial->name, "FETCH") != 0 || !item ||
	    strcmp(item, "BODY[]") != 0)
		return NULL;
	struct sink_handle *h = xcalloc(1, sizeof(*h));
	struct err e;
	if (maildir_batch_add(job->batch, job->md, &h->d, &e) < 0 && !job->sink_failed) {
		job->sink_err = e;
		job->sink_failed = true;
	}
	h->digest = maildir_digest_new();
	return h;
}

static int sink_write(void *ctx, void *handle, const char *p, size_t n)
{
	struct folder_job *job = ctx;
	struct sink_handle *h = handle;
	struct err e;
	if (!h->d)
		return -EIO; /* the delivery could not even start: sink_err says why */
	int rc = maildir_delivery_write(h->d, p, n, &e);
	if (rc < 0) {
		if (!job->sink_failed) {
			job->sink_err = e;
			job->sink_failed = true;
		}
		return rc;
	}
	maildir_digest_feed(h->digest, p, n);
	return 0;
}

static void sink_free(struct sink_handle *h)
{
	maildir_digest_free(&h->digest);
	free(h);
}

static void sink_abort(void *ctx, void *handle)
{
	struct sink_handle *h = handle;
	(void)ctx;
	if (h->d)
		maildir_delivery_abort(h->d);
	sink_free(h);
}

/* Makes the finished downloads durable: intent rows, then the files, then
 * the rows settled (or dropped, for a file that failed). */
static int commit_downloads(struct folder_job *job, struct err *e)
{
	struct state *st = job->fc.st;
	int64_t folder = job->fc.folder->id;
	if (job->ndownloads == 0)
		return 0;
	int rc = state_begin(st, e);
	for (size_t i = 0; i < job->ndownloads && rc == 0; i++) {
		const struct download *dl = &job->downloads[i];
		struct state_msg m = {
			.folder = folder,
			.base = maildir_delivery_base(dl->d),
			.msgid = dl->id.message_id[0] ? dl->id.message_id : NULL,
			.hash = dl->id.body_hash,
			.hash_len = MAILDIR_HASH_LEN,
			.size = dl->size,
			.uid = dl->uid,
			.flags = dl->flags,
			.state = STATE_DOWNLOADING,
		};
		rc = state_msg_add(st, &m, e);
	}
	if (rc == 0)
		rc = state_commit(st, e);
	if (rc < 0)
		return rc;
	struct err fe;
	for (size_t i = 0; i < job->ndownloads; i++)
		job_expect(job, maildir_delivery_file(job->downloads[i].d), WATCH_ARRIVE);
	int files_rc = maildir_batch_commit(job->batch, &fe);
	job->local_touched = true;
	rc = state_begin(st, e);
	for (size_t i = 0; i < job->ndownloads && rc == 0; i++) {
		const struct download *dl = &job->downloads[i];
		if (maildir_delivery_status(dl->d, NULL) == 0) {
			rc = state_msg_settle(st, folder, STATE_UID(dl->uid), dl->uid, e);
			job->stats.down++;
		} else {
			rc = state_msg_delete(st, folder, STATE_UID(dl->uid), e);
		}
	}
	if (rc == 0)
		rc = state_commit(st, e);
	maildir_batch_free(&job->batch);
	job->batch = maildir_batch_new();
	job->ndownloads = 0;
	job->batch_bytes = 0;
	if (rc == 0 && files_rc < 0) {
		*e = fe;
		rc = files_rc;
	}
	return rc;
}

void transfer_fetch_response(struct folder_job *job, struct imap_response *r)
{
	const struct imap_value *body = imap_response_fetch(r, "BODY[]");
	uint64_t uid, size = 0;
	void *handle;
	if (!body || !imap_value_sink(body, &handle, NULL))
		return; /* a flag change or a body kept in memory: not ours */
	imap_value_number(imap_response_fetch(r, "UID"), &uid);
	imap_value_number(imap_response_fetch(r, "RFC822.SIZE"), &size);
	struct sink_handle *h = imap_response_take_sink(r, body);
	if (!h)
		return;
	unsigned flags = 0;
	const struct imap_value *fl = imap_response_fetch(r, "FLAGS");
	const struct imap_value *items;
	size_t n;
	if (imap_value_list(fl, &items, &n))
		for (size_t i = 0; i < n; i++) {
			const char *a = imap_value_atom(&items[i]);
			if (a)
				flags |= flags_from_imap_name(a, strlen(a));
		}
	time_t date;
	const char *ds = imap_value_string(imap_response_fetch(r, "INTERNALDATE"), NULL);
	struct timespec mtime = { 0, 0 };
	bool dated = ds && imap_date_parse(ds, &date);
	mtime.tv_sec = dated ? date : 0;
	struct err e;
	struct download dl = { .d = h->d, .uid = (uint32_t)uid, .flags = flags, .size = size };
	maildir_digest_end(h->digest, &dl.id);
	sink_free(h);
	if (!dl.d || maildir_delivery_finish(dl.d, flags, NULL, dated ? &mtime : NULL, &e) < 0)
		return; /* the error is the sink's, reported with the command */
	job->downloads = xgrow(job->downloads, &job->cap_downloads, job->ndownloads + 1,
			       sizeof(*job->downloads));
	job->downloads[job->ndownloads++] = dl;
	job->batch_bytes += size;
	if (job->ndownloads < BATCH_MESSAGES && job->batch_bytes < BATCH_BYTES)
		return;
	int rc = commit_downloads(job, &e);
	if (rc < 0 && job->rc == 0) {
		job->rc = rc;
		job->err = e;
	}
}

static void on_download_done(void *ctx, const struct imap_reply *reply)
{
	struct folder_job *job = ctx;
	if (reply->status != IMAP_STATUS_OK)
		job_command_failed(job, reply);
	if (--job->inflight > 0)
		return;
	/* What arrived whole is kept, also when the connection failed later. */
	struct err e;
	int rc = commit_downloads(job, &e);
	if (rc < 0 && job->rc == 0) {
		job->rc = rc;
		job->err = e;
	}
	imap_client_set_sink(job->imap, NULL);
	job->listing = LISTING_NONE;
	job_step_done(job);
}

void transfer_downloads(struct folder_job *job)
{
	struct uid_vec uids = { 0 };
	for (size_t i = 0; i < job->plan.n; i++)
		if (job->plan.v[i].op == OP_DOWNLOAD)
			uid_vec_push(&uids, job->plan.v[i].uid);
	if (uids.n == 0) {
		job_step_done(job);
		return;
	}
	job->batch = maildir_batch_new();
	struct imap_sink sink = { sink_open, sink_write, sink_abort, job };
	imap_client_set_sink(job->imap, &sink);
	job->listing = LISTING_BODY;
	job_send_uid_sets(job, uids.v, uids.n, "UID FETCH",
			  " (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])", on_download_done);
	free(uids.v);
}

/* ---- uploads ---- */

struct upload {
	struct folder_job *job;
	const struct plan_action *a;
	struct maildir_msg *msg;
	uint64_t size; /* as sent: CRLF line ends */
	struct maildir_ident id;
	uint32_t uid; /* from APPENDUID; 0 until known */
	bool sent, failed;
};

static void upload_window(struct folder_job *job);

static ssize_t read_upload(void *ctx, char *buf, size_t len, struct err *e)
{
	struct upload *u = ctx;
	if (len >= 2)
		return maildir_msg_read(u->msg, buf, len, true, e);
	/* A CRLF needs room for two bytes; the literal's end has exactly one
	 * left, which cannot be the start of a CRLF. */
	char pair[2];
	ssize_t n = maildir_msg_read(u->msg, pair, sizeof(pair), true, e);
	if (n > (ssize_t)len)
		return err_set(e, -EIO, ERR_LOCAL, "%s: the message grew while being sent",
			       u->a->base);
	if (n > 0)
		memcpy(buf, pair, (size_t)n);
	return n;
}

/* Opens and reads the file once (size with CRLF, Message-ID, body hash).
 * A file a reader removed or renamed meanwhile is left for the next sync. */
static int prepare_upload(struct folder_job *job, struct upload *u, struct err *e)
{
	const struct maildir_entry *f = job_find_file(job, u->a->base);
	if (!f)
		return -ENOENT;
	int rc = maildir_msg_open(&u->msg, job->md, f->in_new, f->file, e);
	if (rc == 0)
		rc = maildir_msg_inspect(u->msg, &u->id, &u->size, e);
	return rc;
}

/* A reader's move between folders can reach us in two halves: the copy in
 * the new folder first, the original's removal later (neomutt removes it
 * when the old folder is synced, possibly seconds after). A fresh file whose
 * Message-ID the state knows elsewhere waits a little (hold_copies_ms), so
 * the next pass sees both halves and moves it; a copy that stays a copy is
 * uploaded when the hold is over. */
static bool held_as_copy(struct folder_job *job, const struct upload *u)
{
	if (!job->fc.hold_copies_ms || !u->id.message_id[0])
		return false;
	const struct maildir_entry *f = job_find_file(job, u->a->base);
	char *path = xasprintf("%s/%s/%s", job->fc.local_path, f->in_new ? "new" : "cur", f->file);
	struct stat st;
	int rc = stat(path, &st);
	free(path);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	int64_t age_ms = (int64_t)(now.tv_sec - st.st_ctim.tv_sec) * 1000 +
			 (now.tv_nsec - st.st_ctim.tv_nsec) / 1000000;
	if (rc < 0 || age_ms >= (int64_t)job->fc.hold_copies_ms)
		return false;
	struct state_msgs twins = { 0 };
	bool known = state_msg_find_msgid(job->fc.st, u->id.message_id, 0, &twins, NULL) == 0 &&
		     twins.n > 0;
	state_msgs_free(&twins);
	if (known)
		log_debug("account=%s folder=\"%s\" event=hold file=%s: a copy of a message "
			  "elsewhere, maybe half of a move",
			  job->acct, job->name, f->file);
	return known;
}

/* The intent, before APPEND: a crash after the server took the message is
 * then resolved by finding it there, not by sending it twice. */
static int record_intents(struct folder_job *job, struct err *e)
{
	uint32_t since = job->uidnext;
	int rc = state_begin(job->fc.st, e);
	for (size_t i = 0; i < job->nuploads && rc == 0; i++) {
		struct upload *u = &job->uploads[i];
		if (u->failed || u->a->row != PLAN_NONE)
			continue; /* a row that lost its UID: it is its own intent */
		struct state_msg m = {
			.folder = job->fc.folder->id,
			.base = u->a->base,
			.msgid = u->id.message_id[0] ? u->id.message_id : NULL,
			.hash = u->id.body_hash,
			.hash_len = MAILDIR_HASH_LEN,
			.size = u->size,
			.flags = u->a->flags,
			.state = STATE_UPLOADING,
			.since_uid = since,
		};
		rc = state_msg_add(job->fc.st, &m, e);
	}
	return rc == 0 ? state_commit(job->fc.st, e) : rc;
}

static void on_append(void *ctx, const struct imap_reply *reply)
{
	struct upload *u = ctx;
	struct folder_job *job = u->job;
	uint64_t uid = 0;
	maildir_msg_free(&u->msg);
	if (reply->status != IMAP_STATUS_OK) {
		u->failed = true;
		job_command_failed(job, reply);
	} else if (imap_client_has(job->imap, CAP_UIDPLUS) &&
		   imap_response_code_is(reply->tagged, "APPENDUID") &&
		   reply->tagged->ncode_args >= 2 &&
		   imap_value_number(&reply->tagged->code_args[1], &uid) && uid <= UINT32_MAX) {
		u->uid = (uint32_t)uid;
	} else {
		job->append_uid_missing = true;
	}
	if (--job->inflight == 0)
		upload_window(job);
}

static void send_append(struct folder_job *job, struct upload *u)
{
	struct imap_cmd *cmd = imap_cmd_new(job->imap, "APPEND");
	struct err e;
	if (imap_cmd_mailbox(cmd, job->name, &e) < 0) {
		imap_cmd_free(&cmd);
		u->failed = true;
		return;
	}
	struct buf b = { 0 };
	flags_format_imap(&b, u->a->flags);
	buf_putc(&b, ' ');
	imap_date_format(&b, maildir_msg_mtime(u->msg).tv_sec);
	imap_cmd_add(cmd, " %s", buf_str(&b));
	buf_free(&b);
	imap_cmd_literal_stream(cmd, u->size, read_upload, u);
	u->sent = true;
	job->inflight++;
	imap_cmd_send(cmd, on_append, u);
}

/* Without UIDPLUS the new UIDs are found by Message-ID and size among the
 * messages that arrived since the intents were written. */
static void on_new_idents(void *ctx, const struct imap_reply *reply);

static void find_appended(struct folder_job *job)
{
	job->append_uid_missing = false;
	remote_vec_clear(&job->remote);
	job->listing = LISTING_IDENT;
	job->inflight++;
	imap_cmd_send(imap_cmd_new(job->imap,
				   "UID FETCH %u:* (UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS "
				   "(MESSAGE-ID)])",
				   job->uidnext ? job->uidnext : 1),
		      on_new_idents, job);
}

static void on_new_idents(void *ctx, const struct imap_reply *reply)
{
	struct folder_job *job = ctx;
	job->inflight--;
	job->listing = LISTING_NONE;
	if (reply->status != IMAP_STATUS_OK)
		job_command_failed(job, reply);
	for (size_t i = 0; i < job->nuploads; i++) {
		struct upload *u = &job->uploads[i];
		for (size_t k = 0; k < job->remote.n && u->sent && !u->failed && !u->uid; k++) {
			struct plan_remote *r = &job->remote.v[k];
			if (r->id.msgid && strcmp(r->id.msgid, u->id.message_id) == 0 &&
			    r->id.size == u->size && !state_msgs_uid(&job->rows, r->uid)) {
				u->uid = r->uid;
				r->uid = 0; /* taken */
			}
		}
	}
	upload_window(job);
}

/* Records the UIDs the window got; rows without one stay as intents and are
 * matched by the next sync. */
static int settle_window(struct folder_job *job, struct err *e)
{
	int rc = state_begin(job->fc.st, e);
	for (size_t i = 0; i < job->nuploads && rc == 0; i++) {
		struct upload *u = &job->uploads[i];
		maildir_msg_free(&u->msg);
		if (!u->uid)
			continue;
		rc = state_msg_settle(job->fc.st, job->fc.folder->id, STATE_BASE(u->a->base), u->uid,
				      e);
		job->stats.up++;
	}
	return rc == 0 ? state_commit(job->fc.st, e) : rc;
}

/* Sends the uploads window by window; each window: read the files, record
 * the intents, APPEND them all pipelined, settle what the server answered. */
static void upload_window(struct folder_job *job)
{
	struct err e;
	if (job->append_uid_missing && job->rc == 0) {
		find_appended(job);
		return;
	}
	int rc = job->nuploads ? settle_window(job, &e) : 0;
	if (rc < 0 || job->rc < 0) {
		if (rc < 0)
			job_fail(job, rc, &e);
		else
			job_step_done(job);
		return;
	}
	job->nuploads = 0;
	while (job->next_upload < job->plan.n && job->nuploads < UPLOAD_WINDOW) {
		const struct plan_action *a = &job->plan.v[job->next_upload++];
		if (a->op != OP_UPLOAD)
			continue;
		struct upload *u = &job->uploads[job->nuploads++];
		*u = (struct upload){ .job = job, .a = a };
		rc = prepare_upload(job, u, &e);
		if (rc == -ENOENT) {
			u->failed = true; /* moved or removed by a reader: next time */
		} else if (rc < 0) {
			job_fail(job, rc, &e);
			return;
		} else if (a->row == PLAN_NONE && held_as_copy(job, u)) {
			u->failed = true;
			job->stats.held++;
		}
	}
	if (job->nuploads == 0) {
		job_step_done(job);
		return;
	}
	if ((rc = record_intents(job, &e)) < 0) {
		job_fail(job, rc, &e);
		return;
	}
	for (size_t i = 0; i < job->nuploads; i++)
		if (!job->uploads[i].failed)
			send_append(job, &job->uploads[i]);
	if (job->inflight == 0)
		upload_window(job);
}

void transfer_uploads(struct folder_job *job)
{
	struct err e;
	int rc = job_scan(job, &e);
	if (rc < 0) {
		job_fail(job, rc, &e);
		return;
	}
	job->uploads = xcalloc(UPLOAD_WINDOW, sizeof(*job->uploads));
	job->next_upload = 0;
	upload_window(job);
}

void transfer_free(struct folder_job *job)
{
	for (size_t i = 0; i < job->nuploads && job->uploads; i++)
		maildir_msg_free(&job->uploads[i].msg);
	free(job->uploads);
	free(job->downloads);
	maildir_batch_free(&job->batch);
}
