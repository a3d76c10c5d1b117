/* Carrying out the plan's flag changes, deletes and bookkeeping. Each side
 * is changed first; the state records a change only once both sides carry
 * it, so a crash in between is settled by the next three-way merge. */
#include "core/log.h"
#include "core/xalloc.h"
#include "imap/quote.h"
#include "maildir/flags.h"
#include "maildir/update.h"
#include "sync/job.h"

#include <stdlib.h>
#include <string.h>

static struct state_key key_of(const struct plan_action *a)
{
	return a->uid && !a->unsettled ? STATE_UID(a->uid) : STATE_BASE(a->base);
}

static void fail_or_next(struct folder_job *job, int rc, const struct err *e)
{
	if (rc < 0)
		job_fail(job, rc, e);
	else
		job_step_done(job);
}

static int uid_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

/* The UIDs of the plan's actions of kind op (and, when mask is not 0, whose
 * field selected by add equals mask), sorted. */
static void collect_uids(const struct folder_job *job, enum plan_op op, int field, unsigned mask,
			 struct uid_vec *out)
{
	out->n = 0;
	for (size_t i = 0; i < job->plan.n; i++) {
		const struct plan_action *a = &job->plan.v[i];
		if (a->op != op || !a->uid)
			continue;
		if (field == 1 && a->add != mask)
			continue;
		if (field == 2 && a->remove != mask)
			continue;
		uid_vec_push(out, a->uid);
	}
	if (out->n) /* else out->v may be NULL, which qsort() does not take */
		qsort(out->v, out->n, sizeof(uint32_t), uid_cmp);
}

/* ---- rows only: pairs and forgotten messages ---- */

void apply_pairs(struct folder_job *job)
{
	struct state *st = job->fc.st;
	int64_t folder = job->fc.folder->id;
	struct err e;
	int rc = state_begin(st, &e);
	for (size_t i = 0; i < job->plan.n && rc == 0; i++) {
		const struct plan_action *a = &job->plan.v[i];
		if (a->op == OP_FORGET) {
			rc = state_msg_delete(st, folder, key_of(a), &e);
		} else if (a->op == OP_PAIR && a->row != PLAN_NONE) {
			rc = state_msg_settle(st, folder, STATE_BASE(a->base), a->uid, &e);
			job->stats.paired++;
		} else if (a->op == OP_PAIR) {
			/* A file paired by identity was inspected: it has its hash. */
			const struct plan_ident *id = &job->plocal[a->local].id;
			struct state_msg m = {
				.folder = folder,
				.base = a->base,
				.msgid = id->msgid && id->msgid[0] ? id->msgid : NULL,
				.hash = id->hash,
				.hash_len = id->hash ? PLAN_HASH_LEN : 0,
				.size = id->size,
				.uid = a->uid,
				.flags = a->flags,
			};
			rc = state_msg_add(st, &m, &e);
			job->stats.paired++;
		}
	}
	rc = rc == 0 ? state_commit(st, &e) : rc;
	fail_or_next(job, rc, &e);
}

/* ---- flags ---- */

/* One UID STORE per distinct set of flags to add and to remove, .SILENT so
 * the server does not echo every message back. */
void apply_push_flags(struct folder_job *job)
{
	struct uid_vec uids = { 0 };
	for (unsigned mask = 1; mask <= FLAG_ALL; mask++) {
		for (int field = 1; field <= 2; field++) {
			collect_uids(job, OP_PUSH_FLAGS, field, mask, &uids);
			if (uids.n == 0)
				continue;
			struct buf flags = { 0 };
			flags_format_imap(&flags, mask);
			char *after = xasprintf(" %sFLAGS.SILENT %s", field == 1 ? "+" : "-",
						buf_str(&flags));
			job_send_uid_sets(job, uids.v, uids.n, "UID STORE", after, job_command_done);
			free(after);
			buf_free(&flags);
		}
	}
	free(uids.v);
	for (size_t i = 0; i < job->plan.n; i++)
		if (job->plan.v[i].op == OP_PUSH_FLAGS) {
			job->ok[i] = true; /* a failed STORE fails the step, so no save */
			job->stats.flags_remote++;
		}
	if (job->inflight == 0)
		job_step_done(job);
}

void apply_local_flags(struct folder_job *job)
{
	struct err e;
	int rc = 0;
	bool any = false;
	for (size_t i = 0; i < job->plan.n && rc == 0; i++) {
		const struct plan_action *a = &job->plan.v[i];
		if (a->op != OP_LOCAL_FLAGS)
			continue;
		if (!any && (rc = job_scan(job, &e)) < 0)
			break;
		any = true;
		const struct maildir_entry *f = job_find_file(job, a->base);
		char *moved = NULL;
		bool in_new;
		if (f)
			job_expect(job, f->file, WATCH_LEAVE);
		int r = f ? maildir_set_flags(job->md, f->in_new, f->file, a->flags, &moved, &in_new, &e)
			  : -ENOENT;
		job_expect(job, moved, WATCH_ARRIVE);
		free(moved);
		if (r == 0) {
			job->ok[i] = true;
			job->stats.flags_local++;
		} else if (r != -ENOENT && r != -EEXIST) {
			rc = r; /* a reader's rename in between is for the next sync */
		}
	}
	if (any) {
		job->local_touched = true;
		if (rc == 0)
			rc = maildir_flush(job->md, &e);
	}
	fail_or_next(job, rc, &e);
}

/* The flags a message ends up with, once both sides carry them: the PUSH and
 * LOCAL actions of a message come right before its SAVE (sync/plan.c). */
void apply_save_flags(struct folder_job *job)
{
	struct err e;
	int rc = state_begin(job->fc.st, &e);
	for (size_t i = 0; i < job->plan.n && rc == 0; i++) {
		const struct plan_action *a = &job->plan.v[i];
		if (a->op != OP_SAVE_FLAGS)
			continue;
		bool done = true;
		for (size_t k = i; k-- > 0 && k + 2 >= i;) {
			const struct plan_action *b = &job->plan.v[k];
			bool same = b->uid == a->uid && b->base == a->base;
			if (same && (b->op == OP_PUSH_FLAGS || b->op == OP_LOCAL_FLAGS))
				done &= job->ok[k];
		}
		if (done)
			rc = state_msg_set_flags(job->fc.st, job->fc.folder->id, key_of(a), a->flags,
						 &e);
	}
	rc = rc == 0 ? state_commit(job->fc.st, &e) : rc;
	fail_or_next(job, rc, &e);
}

/* ---- deletes ---- */

void apply_delete_local(struct folder_job *job)
{
	struct err e;
	int rc = 0;
	bool any = false;
	for (size_t i = 0; i < job->plan.n && rc == 0; i++) {
		const struct plan_action *a = &job->plan.v[i];
		if (a->op != OP_DELETE_LOCAL)
			continue;
		if (!any && (rc = job_scan(job, &e)) < 0)
			break;
		any = true;
		const struct maildir_entry *f = job_find_file(job, a->base);
		if (f)
			job_expect(job, f->file, WATCH_LEAVE);
		int r = f ? maildir_remove(job->md, f->in_new, f->file, &e) : -ENOENT;
		if (r == 0 || !f)
			job->ok[i] = true; /* gone, by us or before */
		else if (r != -ENOENT)
			rc = r;
	}
	if (!any) {
		job_step_done(job);
		return;
	}
	job->local_touched = true;
	if (rc == 0)
		rc = maildir_flush(job->md, &e);
	if (rc == 0)
		rc = state_begin(job->fc.st, &e);
	for (size_t i = 0; i < job->plan.n && rc == 0; i++)
		if (job->plan.v[i].op == OP_DELETE_LOCAL && job->ok[i]) {
			rc = state_msg_delete(job->fc.st, job->fc.folder->id, key_of(&job->plan.v[i]),
					      &e);
			job->stats.del_local++;
		}
	rc = rc == 0 ? state_commit(job->fc.st, &e) : rc;
	fail_or_next(job, rc, &e);
}

/* One reply of a delete step's batch: true when it was the last one and the
 * whole batch succeeded. A failure ends the step with the rows kept, so the
 * next sync deletes again. */
static bool delete_batch_ok(struct folder_job *job, const struct imap_reply *reply)
{
	if (reply->status != IMAP_STATUS_OK)
		job_command_failed(job, reply);
	if (--job->inflight > 0)
		return false;
	if (job->rc < 0) {
		job_step_done(job);
		return false;
	}
	return true;
}

static void on_remote_deleted(void *ctx, const struct imap_reply *reply)
{
	struct folder_job *job = ctx;
	if (!delete_batch_ok(job, reply))
		return;
	struct err e;
	int rc = state_begin(job->fc.st, &e);
	for (size_t i = 0; i < job->plan.n && rc == 0; i++)
		if (job->plan.v[i].op == OP_DELETE_REMOTE) {
			rc = state_msg_delete(job->fc.st, job->fc.folder->id, key_of(&job->plan.v[i]),
					      &e);
			job->stats.del_remote++;
		}
	rc = rc == 0 ? state_commit(job->fc.st, &e) : rc;
	fail_or_next(job, rc, &e);
}

/* The messages are marked \Deleted: now the expunge. UID EXPUNGE (UIDPLUS)
 * touches only these UIDs; a plain EXPUNGE also removes other messages marked
 * \Deleted, which readers show as deleted already. */
static void on_remote_marked(void *ctx, const struct imap_reply *reply)
{
	struct folder_job *job = ctx;
	if (!delete_batch_ok(job, reply))
		return;
	struct uid_vec uids = { 0 };
	collect_uids(job, OP_DELETE_REMOTE, 0, 0, &uids);
	if (imap_client_has(job->imap, CAP_UIDPLUS)) {
		job_send_uid_sets(job, uids.v, uids.n, "UID EXPUNGE", "", on_remote_deleted);
	} else {
		job->inflight++;
		imap_cmd_send(imap_cmd_new(job->imap, "EXPUNGE"), on_remote_deleted, job);
	}
	free(uids.v);
}

/* Marks the UIDs \Deleted, then expunges them. The EXPUNGE waits for the
 * STORE's completion (RFC 3501 section 5.5: a command whose result depends on
 * another's is not pipelined with it): Dovecot runs a pipelined UID EXPUNGE
 * beside a UID STORE that waits for a lock, finds nothing marked yet, and the
 * message stayed on the server while its row went (the soak found it). */
static void expunge_uids(struct folder_job *job, const struct uid_vec *uids)
{
	job_send_uid_sets(job, uids->v, uids->n, "UID STORE", " +FLAGS.SILENT (\\Deleted)",
			  on_remote_marked);
}

/* The copies are in the Trash folder: now the originals may go. Not before:
 * with a refused COPY (a full Trash, say) the expunge would remove the only
 * copy of the message. */
static void on_trash_copied(void *ctx, const struct imap_reply *reply)
{
	struct folder_job *job = ctx;
	if (!delete_batch_ok(job, reply))
		return;
	struct uid_vec uids = { 0 };
	collect_uids(job, OP_DELETE_REMOTE, 0, 0, &uids);
	expunge_uids(job, &uids);
	free(uids.v);
}

/* A local delete: moved to the Trash folder (delete = "trash"; UID MOVE, or
 * COPY and then expunge where MOVE is missing) or expunged. */
void apply_delete_remote(struct folder_job *job)
{
	struct uid_vec uids = { 0 };
	collect_uids(job, OP_DELETE_REMOTE, 0, 0, &uids);
	if (uids.n == 0) {
		free(uids.v);
		job_step_done(job);
		return;
	}
	const char *trash = job->fc.trash;
	bool want_trash = job->fc.account->imap->delete_mode == DELETE_TRASH;
	bool to_trash = want_trash && trash && strcmp(trash, job->name) != 0;
	if (want_trash && !trash)
		log_warn("account=%s folder=\"%s\" delete = \"trash\", but the server marks no "
			 "folder \\Trash: expunging instead",
			 job->acct, job->name);
	struct buf target = { 0 };
	struct err e;
	if (to_trash && imap_quote_mailbox(&target, trash, strlen(trash), 0, &e) < 0)
		to_trash = false;
	char *after = xasprintf(" %s", buf_str(&target));
	if (to_trash && imap_client_has(job->imap, CAP_MOVE))
		job_send_uid_sets(job, uids.v, uids.n, "UID MOVE", after, on_remote_deleted);
	else if (to_trash)
		job_send_uid_sets(job, uids.v, uids.n, "UID COPY", after, on_trash_copied);
	else
		expunge_uids(job, &uids);
	free(after);
	buf_free(&target);
	free(uids.v);
}
