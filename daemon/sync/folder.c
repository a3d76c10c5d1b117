#include "sync/folder.h"

#include "core/log.h"
#include "core/xalloc.h"
#include "maildir/flags.h"
#include "maildir/msgfile.h"
#include "sync/job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void step_select(struct folder_job *job);
static void step_listing(struct folder_job *job);
static void step_idents(struct folder_job *job);
static void step_hashes(struct folder_job *job);
static void step_plan(struct folder_job *job);
static void step_trim(struct folder_job *job);
static void step_finish(struct folder_job *job);

/* The order of a folder sync. State changes of each step are committed
 * before the next step starts, in the durability order of docs/SYNC.md. */
static void (*const steps[])(struct folder_job *) = {
	step_select,	     step_listing,	  step_idents,	       step_hashes,
	step_plan,	     apply_pairs,	  step_trim,	       transfer_downloads,
	apply_push_flags,    apply_local_flags,	  apply_save_flags,    transfer_uploads,
	apply_delete_local,  apply_delete_remote, step_finish,
};

struct folder_job *folder_job_new(const struct folder_ctx *fc, folder_done_cb done, void *ctx)
{
	struct folder_job *job = xcalloc(1, sizeof(*job));
	job->fc = *fc;
	job->done = done;
	job->done_ctx = ctx;
	job->name = fc->folder->name;
	job->acct = fc->account->name;
	return job;
}

static void plan_locals_free(struct folder_job *job)
{
	for (size_t i = 0; i < job->nlocal; i++) {
		free((char *)job->plocal[i].id.msgid);
		free((unsigned char *)job->plocal[i].id.hash);
	}
	xfree(&job->plocal);
	job->nlocal = 0;
}

static void job_free(struct folder_job *job)
{
	transfer_free(job);
	maildir_scan_free(&job->scan);
	maildir_free(&job->md);
	state_msgs_free(&job->rows);
	remote_vec_clear(&job->remote);
	free(job->vanished.v);
	free(job->prows);
	plan_locals_free(job);
	free(job->ok);
	plan_free(&job->plan);
	free(job);
}

/* Ends the job: the callback, then the job is gone. */
static void finish(struct folder_job *job)
{
	if (job->imap)
		imap_client_set_sink(job->imap, NULL);
	struct err e = job->err;
	/* Maildir errors name the folder already ("INBOX: disk full ..."). */
	size_t n = strlen(job->name);
	bool named = strncmp(e.msg, job->name, n) == 0 && e.msg[n] == ':';
	if (job->rc < 0 && named)
		snprintf(e.msg, sizeof(e.msg), "folder %.*s", (int)sizeof(e.msg) - 8, job->err.msg);
	else if (job->rc < 0)
		err_prefix(&e, "folder %s", job->name);
	job->done(job->done_ctx, job->rc, job->rc < 0 ? &e : NULL, &job->stats);
	job_free(job);
}

void job_fail(struct folder_job *job, int rc, const struct err *err)
{
	if (job->rc == 0) {
		job->rc = rc < 0 ? rc : -EIO;
		job->err = *err;
	}
	state_rollback(job->fc.st, NULL);
	if (job->inflight == 0)
		finish(job);
}

void job_step_done(struct folder_job *job)
{
	if (job->rc < 0) {
		finish(job);
		return;
	}
	job->phase++;
	steps[job->phase](job);
}

void job_command_failed(struct folder_job *job, const struct imap_reply *reply)
{
	if (job->rc == 0) {
		job->rc = -EPROTO;
		/* A body that could not be written fails its command; say why. */
		job->err = job->sink_failed ? job->sink_err : reply->err;
	}
}

void job_command_done(void *ctx, const struct imap_reply *reply)
{
	struct folder_job *job = ctx;
	if (reply->status != IMAP_STATUS_OK)
		job_command_failed(job, reply);
	if (--job->inflight == 0)
		job_step_done(job);
}

/* ---- the Maildir side ---- */

void job_expect(struct folder_job *job, const char *file, enum watch_op op)
{
	if (job->fc.watch && file)
		watch_expect(job->fc.watch, job->fc.local_path, file, op);
}

static void keep_planned_files(struct folder_job *job);

int job_scan(struct folder_job *job, struct err *e)
{
	if (job->scan)
		return 0;
	int rc = maildir_scan(job->md, 0, &job->scan, e);
	if (rc == 0 && job->trimmed)
		keep_planned_files(job);
	return rc;
}

const struct maildir_entry *job_find_file(struct folder_job *job, const char *base)
{
	struct maildir_scan *s = job->scan;
	size_t lo = 0, hi = s ? s->n : 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(s->v[mid].base, base);
		if (c == 0)
			return &s->v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static bool same_time(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

/* A download interrupted between its intent and the file's rename: settled
 * when the file made it into the Maildir, forgotten (and fetched again) when
 * it did not. */
static int settle_downloads(struct folder_job *job, struct err *e)
{
	bool any = false;
	for (size_t i = 0; i < job->rows.n && !any; i++)
		any = job->rows.v[i].state == STATE_DOWNLOADING;
	if (!any)
		return 0;
	int rc = job_scan(job, e);
	if (rc == 0)
		rc = state_begin(job->fc.st, e);
	for (size_t i = 0; i < job->rows.n && rc == 0; i++) {
		const struct state_msg *m = &job->rows.v[i];
		if (m->state != STATE_DOWNLOADING)
			continue;
		if (job_find_file(job, m->base))
			rc = state_msg_settle(job->fc.st, m->folder, STATE_UID(m->uid), m->uid, e);
		else
			rc = state_msg_delete(job->fc.st, m->folder, STATE_UID(m->uid), e);
	}
	if (rc == 0)
		rc = state_commit(job->fc.st, e);
	if (rc == 0)
		rc = state_msg_load_lean(job->fc.st, job->fc.folder->id, &job->rows, e);
	return rc;
}

/* What a killed sync left in tmp/ (docs/STATE.md): its downloads are
 * fetched again, so the files only take space. Not worth failing a sync. */
static void clean_tmp(struct folder_job *job)
{
	struct err e;
	size_t removed = 0;
	if (maildir_clean_tmp(job->md, MAILDIR_TMP_MAX_AGE, &removed, &e) < 0)
		log_warn("account=%s folder=%s cleaning tmp/: %s", job->acct, job->name, e.msg);
	else if (removed)
		log_info("account=%s folder=%s event=tmp-cleaned files=%zu", job->acct, job->name,
			 removed);
}

static int prepare_local(struct folder_job *job, struct err *e)
{
	const struct state_folder *f = job->fc.folder;
	int rc = maildir_ensure(job->fc.local_path, e);
	if (rc == 0)
		rc = maildir_open(&job->md, job->fc.local_path, job->name, e);
	if (rc == 0)
		rc = state_msg_load_lean(job->fc.st, f->id, &job->rows, e);
	if (rc < 0)
		return rc;
	clean_tmp(job);
	struct maildir_stamp now;
	rc = maildir_stamp_read(job->md, &now, e);
	if (rc < 0)
		return rc;
	/* The folder row keeps the times of the last complete scan only when they
	 * could be trusted and nothing of ours moved them since (else zero). */
	job->local_unchanged = !job->fc.force_scan && f->new_mtime.tv_sec != 0 && same_time(&now.new_mtime, &f->new_mtime) &&
			       same_time(&now.cur_mtime, &f->cur_mtime);
	if (!job->local_unchanged && (rc = job_scan(job, e)) < 0)
		return rc;
	return settle_downloads(job, e);
}

/* ---- SELECT ---- */

static void on_untagged(void *ctx, struct imap_response *r)
{
	struct folder_job *job = ctx;
	uint64_t n;
	if (r->status == IMAP_STATUS_OK && r->ncode_args >= 1) {
		if (imap_response_code_is(r, "UIDVALIDITY") &&
		    imap_value_number(&r->code_args[0], &n))
			job->uidvalidity = (uint32_t)n;
		else if (imap_response_code_is(r, "UIDNEXT") &&
			 imap_value_number(&r->code_args[0], &n))
			job->uidnext = (uint32_t)n;
		/* SELECT's only. Dovecot reports a new HIGHESTMODSEQ after every later
		 * change too (ours, another client's, an APPEND a killed run left in
		 * flight), and the folder row must keep the modseq its listing is as
		 * of: a change after it would otherwise never show in a delta. */
		else if (imap_response_code_is(r, "HIGHESTMODSEQ") && job->phase == 0 &&
			 imap_value_number(&r->code_args[0], &n))
			job->highestmodseq = n;
		else if (imap_response_code_is(r, "PERMANENTFLAGS")) {
			const struct imap_value *items;
			size_t k;
			job->have_permflags = true;
			job->permflags = 0;
			if (imap_value_list(&r->code_args[0], &items, &k))
				for (size_t i = 0; i < k; i++) {
					const char *a = imap_value_atom(&items[i]);
					if (a && strcmp(a, "\\*") == 0)
						job->permflags |= FLAG_ALL;
					else if (a)
						job->permflags |= flags_from_imap_name(a, strlen(a));
				}
		}
		return;
	}
	if (imap_response_code_is(r, "NOMODSEQ")) {
		job->nomodseq = true;
		return;
	}
	if (r->name && strcmp(r->name, "EXISTS") == 0 && r->has_number) {
		job->exists = (uint32_t)r->number;
		job->exists_known = true;
		return;
	}
	listing_untagged(job, r);
}

struct pool_user folder_job_user(struct folder_job *job)
{
	return (struct pool_user){ on_untagged, job };
}

/* QRESYNC: the server sends what changed since the known HIGHESTMODSEQ as
 * part of SELECT (RFC 7162 section 3.2.5), expunges included. */
static void step_select(struct folder_job *job)
{
	const struct state_folder *f = job->fc.folder;
	struct imap_cmd *cmd = imap_cmd_new(job->imap, "SELECT");
	struct err e;
	if (imap_cmd_mailbox(cmd, job->name, &e) < 0) {
		imap_cmd_free(&cmd);
		job_fail(job, -EINVAL, &e);
		return;
	}
	job->select_qresync = imap_client_qresync(job->imap) && f->uidvalidity && f->highestmodseq;
	if (job->select_qresync)
		imap_cmd_add(cmd, " (QRESYNC (%u %llu))", f->uidvalidity,
			     (unsigned long long)f->highestmodseq);
	else if (imap_client_has(job->imap, CAP_CONDSTORE))
		imap_cmd_add(cmd, " (CONDSTORE)");
	job->listing = LISTING_FLAGS;
	job->inflight++;
	imap_cmd_send(cmd, job_command_done, job);
}

/* A new UIDVALIDITY means every UID the state knows names something else
 * now: the rows keep their files and are matched again by Message-ID and
 * size; nothing local is deleted for it. */
static int check_uidvalidity(struct folder_job *job, struct err *e)
{
	struct state_folder *f = job->fc.folder;
	if (job->uidvalidity == 0)
		return err_set(e, -EPROTO, ERR_PERM, "%s: the server sent no UIDVALIDITY",
			       imap_client_name(job->imap));
	if (f->uidvalidity == job->uidvalidity)
		return 0;
	if (f->uidvalidity)
		log_warn("account=%s folder=%s event=uidvalidity old=%u new=%u: matching messages "
			 "again by Message-ID",
			 job->acct, job->name, f->uidvalidity, job->uidvalidity);
	int rc = state_folder_set_uidvalidity(job->fc.st, f->id, job->uidvalidity, e);
	if (rc == 0)
		rc = state_msg_load_lean(job->fc.st, f->id, &job->rows, e);
	f->uidvalidity = job->uidvalidity;
	f->highestmodseq = 0;
	f->uidnext = 0;
	/* What SELECT sent was a delta against a state that no longer holds. */
	remote_vec_clear(&job->remote);
	job->vanished.n = 0;
	job->select_qresync = false;
	return rc;
}

static void step_listing(struct folder_job *job)
{
	struct err e;
	int rc = check_uidvalidity(job, &e);
	if (rc < 0) {
		job_fail(job, rc, &e);
		return;
	}
	listing_start(job);
}

/* ---- pairing what no row knows ---- */

static int base_cmp(const void *a, const void *b, void *ctx)
{
	const struct state_msgs *rows = ctx;
	return strcmp(rows->v[*(const size_t *)a].base, rows->v[*(const size_t *)b].base);
}

/* Whether some row has this base name, by binary search in an index of the
 * rows sorted by base. */
static bool row_has_base(const struct state_msgs *rows, const size_t *by_base, const char *base)
{
	size_t lo = 0, hi = rows->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(rows->v[by_base[mid]].base, base);
		if (c == 0)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* New on the server: UIDs no row holds. */
static size_t new_remote_uids(struct folder_job *job, uint32_t **out)
{
	size_t n = 0;
	*out = xcalloc(job->remote.n + 1, sizeof(uint32_t));
	for (size_t i = 0; i < job->remote.n; i++)
		if (!state_msgs_uid(&job->rows, job->remote.v[i].uid))
			(*out)[n++] = job->remote.v[i].uid;
	return n;
}

/* Marks (in unknown[]) the scanned files no row knows; returns how many. */
static size_t find_unknown_files(struct folder_job *job, bool *unknown)
{
	size_t *by_base = xcalloc(job->rows.n + 1, sizeof(size_t));
	for (size_t i = 0; i < job->rows.n; i++)
		by_base[i] = i;
	qsort_r(by_base, job->rows.n, sizeof(size_t), base_cmp, &job->rows);
	size_t n = 0;
	for (size_t i = 0; job->scan && i < job->scan->n; i++) {
		unknown[i] = !row_has_base(&job->rows, by_base, job->scan->v[i].base);
		n += unknown[i];
	}
	free(by_base);
	return n;
}

/* Message-ID, size and body hash of a file no row knows, as pairing needs
 * them, copied out of the 1 KB struct maildir_ident: an array of those for
 * every file of the scan was 28 MB of heap for a 28,000-message INBOX. */
static int local_ident(struct folder_job *job, size_t i, struct err *e)
{
	const struct maildir_entry *f = &job->scan->v[i];
	struct maildir_msg *msg;
	struct maildir_ident id;
	uint64_t size = 0;
	int rc = maildir_msg_open(&msg, job->md, f->in_new, f->file, e);
	if (rc == 0) {
		rc = maildir_msg_inspect(msg, &id, &size, e);
		maildir_msg_free(&msg);
	}
	if (rc == 0) {
		unsigned char *hash = xmalloc(PLAN_HASH_LEN);
		memcpy(hash, id.body_hash, PLAN_HASH_LEN);
		job->plocal[i].id = (struct plan_ident){ xstrdup(id.message_id), size, hash };
	}
	return rc == -ENOENT ? 0 : rc; /* a file a reader just moved is for next time */
}

/* Pairing needs to know who the messages are only when something is new
 * (or unknown) on both sides: then fetch Message-ID and size for the new
 * UIDs and read them from the new files. */
static void step_idents(struct folder_job *job)
{
	uint32_t *uids;
	size_t n = new_remote_uids(job, &uids);
	size_t nscan = job->scan ? job->scan->n : 0;
	bool *unknown = xcalloc(nscan + 1, sizeof(bool));
	size_t nunknown = find_unknown_files(job, unknown);
	bool rows_unknown = false;
	for (size_t i = 0; i < job->rows.n; i++)
		rows_unknown |= job->rows.v[i].uid == 0;
	job->plocal = xcalloc(nscan + 1, sizeof(*job->plocal));
	job->nlocal = nscan;
	for (size_t i = 0; i < nscan; i++)
		job->plocal[i] = (struct plan_local){ .base = job->scan->v[i].base,
						      .flags = job->scan->v[i].flags };
	bool pairing = n > 0 && (nunknown > 0 || rows_unknown);
	struct err e;
	int rc = 0;
	for (size_t i = 0; i < nscan && pairing && rc == 0; i++)
		if (unknown[i])
			rc = local_ident(job, i, &e);
	free(unknown);
	if (rc < 0) {
		free(uids);
		job_fail(job, rc, &e);
		return;
	}
	if (!pairing) {
		free(uids);
		job_step_done(job);
		return;
	}
	listing_fetch_idents(job, uids, n);
	free(uids);
}

static int uid_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

static int size_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* Sizes of the messages here that wait to be paired and have no Message-ID
 * (rows that lost their UID, files no row knows), sorted; returns how many. */
static size_t sizes_without_msgid(const struct folder_job *job, uint64_t **out)
{
	size_t n = 0;
	*out = xcalloc(job->rows.n + job->nlocal + 1, sizeof(uint64_t));
	for (size_t i = 0; i < job->rows.n; i++) {
		const struct state_msg *m = &job->rows.v[i];
		if (m->uid == 0 && !m->msgid && m->hash_len == PLAN_HASH_LEN)
			(*out)[n++] = m->size;
	}
	for (size_t i = 0; i < job->nlocal; i++) {
		const struct plan_ident *id = &job->plocal[i].id;
		if (id->msgid && !id->msgid[0] && id->hash)
			(*out)[n++] = id->size;
	}
	if (n)
		qsort(*out, n, sizeof(uint64_t), size_cmp);
	return n;
}

/* A message without a Message-ID is paired by size and body hash. The
 * server's hash costs the body, so it is fetched only for new server
 * messages without a Message-ID that have the size of such a message
 * waiting here (after an interrupted sync or a UIDVALIDITY change). */
static void step_hashes(struct folder_job *job)
{
	uint64_t *sizes;
	size_t nsizes = sizes_without_msgid(job, &sizes);
	struct uid_vec uids = { 0 };
	for (size_t i = 0; i < job->remote.n && nsizes; i++) {
		const struct plan_remote *r = &job->remote.v[i];
		if (r->id.msgid && !r->id.msgid[0] &&
		    bsearch(&r->id.size, sizes, nsizes, sizeof(uint64_t), size_cmp))
			uid_vec_push(&uids, r->uid);
	}
	free(sizes);
	if (uids.n == 0) {
		job_step_done(job);
	} else {
		qsort(uids.v, uids.n, sizeof(uint32_t), uid_cmp);
		listing_fetch_hashes(job, uids.v, uids.n);
	}
	free(uids.v);
}

/* ---- planning ---- */

static int remote_cmp(const void *a, const void *b)
{
	return uid_cmp(&((const struct plan_remote *)a)->uid, &((const struct plan_remote *)b)->uid);
}

static void step_plan(struct folder_job *job)
{
	job->prows = xcalloc(job->rows.n + 1, sizeof(*job->prows));
	for (size_t i = 0; i < job->rows.n; i++) {
		const struct state_msg *m = &job->rows.v[i];
		const unsigned char *hash = m->hash_len == PLAN_HASH_LEN ? m->hash : NULL;
		job->prows[i] = (struct plan_row){ m->uid, m->base, m->flags,
						   { m->msgid, m->size, hash } };
	}
	/* An empty vector has no array, and qsort() takes no NULL even for 0 items. */
	if (job->remote.n)
		qsort(job->remote.v, job->remote.n, sizeof(*job->remote.v), remote_cmp);
	job->listing = LISTING_NONE; /* the UID index no longer matches the order */
	if (job->vanished.n)
		qsort(job->vanished.v, job->vanished.n, sizeof(uint32_t), uid_cmp);
	const struct account_conf *a = job->fc.account;
	struct plan_input in = {
		.rows = job->prows,
		.nrows = job->rows.n,
		.local = job->plocal,
		.nlocal = job->nlocal,
		.local_unchanged = job->local_unchanged,
		.remote = job->remote.v,
		.nremote = job->remote.n,
		.remote_full = job->remote_full,
		.vanished = job->vanished.v,
		.nvanished = job->vanished.n,
		.server_flags = job->have_permflags ? job->permflags : FLAG_ALL,
		.max_delete_share = a->max_delete_share,
		.min_mass_delete = (unsigned)a->min_mass_delete,
		.allow_mass_delete = job->fc.allow_mass_delete,
	};
	plan_folder(&in, &job->plan);
	job->ok = xcalloc(job->plan.n + 1, sizeof(bool));
	job->stats.guarded = job->plan.guarded_local + job->plan.guarded_remote;
	log_debug("account=%s folder=%s event=plan rows=%zu local=%zu%s remote=%zu%s actions=%zu",
		  job->acct, job->name, job->rows.n, job->nlocal,
		  job->local_unchanged ? "(unchanged)" : "", job->remote.n,
		  job->remote_full ? "(full)" : "(delta)", job->plan.n);
	job_step_done(job);
}

/* ---- after planning ---- */

static int str_ptr_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The base names the plan's actions name, sorted. */
struct plan_bases {
	const char **v;
	size_t n;
};

static bool named_by_plan(const struct maildir_entry *en, void *ctx)
{
	const struct plan_bases *b = ctx;
	return b->n && bsearch(&en->base, b->v, b->n, sizeof(*b->v), str_ptr_cmp);
}

/* Drops the scan's entries of files no action touches. An action's base may
 * point into the scan: its entry is kept, and kept strings do not move. */
static void keep_planned_files(struct folder_job *job)
{
	struct plan_bases b = { xcalloc(job->plan.n + 1, sizeof(*b.v)), 0 };
	for (size_t i = 0; i < job->plan.n; i++)
		if (job->plan.v[i].base)
			b.v[b.n++] = job->plan.v[i].base;
	qsort(b.v, b.n, sizeof(*b.v), str_ptr_cmp);
	maildir_scan_keep(job->scan, named_by_plan, &b);
	free(b.v);
}

/* From here on the job looks up only the files its actions touch, so the
 * rest of the scan and the plan's inputs go (a scan made later is cut down
 * the same way). Kept to the job's end, they were a copy of the whole folder
 * per job, and the largest folders of a pass, which end last, held theirs all
 * at once: that was most of the push-up bench's peak. */
static void step_trim(struct folder_job *job)
{
	job->trimmed = true;
	if (job->scan)
		keep_planned_files(job);
	plan_locals_free(job);
	xfree(&job->prows);
	job_step_done(job);
}

/* ---- the end ---- */

static void count_messages(struct folder_job *job, struct err *e)
{
	if (job->plan.n > 0 &&
	    state_msg_load_lean(job->fc.st, job->fc.folder->id, &job->rows, e) < 0)
		return;
	job->stats.messages = (unsigned)job->rows.n;
	job->stats.unread = 0;
	for (size_t i = 0; i < job->rows.n; i++)
		job->stats.unread += !(job->rows.v[i].flags & FLAG_SEEN);
}

/* Records what this sync has seen, so the next one can ask for changes
 * since. Not when deletes were held back: the next sync must see them again.
 * Nor the Maildir's times when copies were held (maybe halves of moves): the
 * pass after the hold must scan them again, or a folder that changed no more
 * kept its held copies off the server for good (the soak found it). */
static void step_finish(struct folder_job *job)
{
	struct state_folder *f = job->fc.folder;
	struct err e;
	count_messages(job, &e);
	if (job->stats.guarded == 0) {
		f->uidnext = job->uidnext;
		f->highestmodseq = job->nomodseq ? 0 : job->highestmodseq;
		bool trusted = job->scan && job->scan->consistent && !job->local_touched &&
			       job->stats.held == 0;
		if (!job->local_unchanged || job->local_touched) {
			struct timespec zero = { 0, 0 };
			f->new_mtime = trusted ? job->scan->stamp.new_mtime : zero;
			f->cur_mtime = trusted ? job->scan->stamp.cur_mtime : zero;
		}
	}
	f->messages = job->stats.messages;
	f->unread = job->stats.unread;
	f->last_sync = time(NULL);
	free(f->last_result);
	f->last_result = job->stats.guarded ? xstrdup("mass deletion held back") : xstrdup("ok");
	int rc = state_folder_save(job->fc.st, f, &e);
	if (rc < 0) {
		job_fail(job, rc, &e);
		return;
	}
	if (job->stats.guarded) {
		bool remote = job->plan.guarded_remote > 0;
		err_set(&job->err, -ECANCELED, ERR_PERM,
			"%zu of %zu messages would be deleted %s (more than %.0f%%); nothing was "
			"deleted there. If that is what you want, run: mailferryd --once "
			"--allow-mass-delete",
			remote ? job->plan.guarded_remote : job->plan.guarded_local, job->rows.n,
			remote ? "on the server" : "from the Maildir",
			job->fc.account->max_delete_share * 100);
		job->rc = -ECANCELED;
	}
	finish(job);
}

/* ---- running ---- */

void folder_job_run(struct folder_job *job, struct imap_client *c)
{
	job->imap = c;
	struct err e;
	int rc = prepare_local(job, &e);
	if (rc < 0) {
		job_fail(job, rc, &e);
		return;
	}
	steps[0](job);
}

void folder_job_fail(struct folder_job *job, const struct err *err)
{
	job_fail(job, -EIO, err);
}
