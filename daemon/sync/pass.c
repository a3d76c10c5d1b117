#include "sync/pass.h"

#include "core/log.h"
#include "core/xalloc.h"
#include "imap/list.h"
#include "maildir/folder.h"
#include "maildir/scan.h"
#include "sync/folders.h"
#include "sync/moves.h"

#include <stdio.h>
#include <string.h>

/* An upload or move cut off (a killed run, a dropped connection) leaves its
 * row pending and may still land on the server after the client saw it fail:
 * Dovecot goes on with a killed TLS client's buffered APPENDs for up to a
 * second. The pass that settles such rows looks for the server's copy only
 * after this wait, or it would send the message a second time. */
#define INTERRUPTED_WAIT_MS 2000

struct pass_job {
	struct pass *pass;
	struct folder_entry *entry;
	struct state_folder row;
	char *path; /* absolute path of the Maildir */
	struct folder_job *job;
	struct imap_client *c; /* lent by the pool while the job runs */
};

struct pass {
	uv_loop_t *loop;
	struct sync_pool *pool;
	struct state *st;
	const struct account_conf *a;
	struct pass_opts opts;
	pass_done_cb done;
	void *ctx;
	uint64_t start;

	struct imap_client *c; /* the first connection, for LIST and CREATE */
	bool has_condstore;
	bool status_fresh; /* LIST-STATUS came from a connection with nothing selected */
	struct imap_folder_list server;
	struct state_folder *known;
	size_t nknown;
	struct maildir_tree tree;
	struct folder_set set;

	struct pass_job *jobs;
	size_t njobs, running;
	struct moves_folder *moving;
	unsigned creating;
	struct pass_result res;
};

static void record_failure(struct pass *p, int rc, const struct err *err)
{
	if (err->code == -ECANCELED)
		log_debug("account=%s %s", p->a->name, err->msg); /* we are stopping */
	else
		log_error("account=%s %s", p->a->name, err->msg);
	p->res.failures++;
	if (p->res.rc == 0) {
		p->res.rc = rc < 0 ? rc : -EIO;
		p->res.err = *err;
	}
}

static void finish(struct pass *p)
{
	p->res.ms = uv_hrtime() / 1000000 - p->start;
	for (size_t i = 0; i < p->njobs; i++) {
		state_folder_clear(&p->jobs[i].row);
		free(p->jobs[i].path);
	}
	free(p->jobs);
	free(p->moving);
	folders_free(&p->set);
	maildir_tree_free(&p->tree);
	state_folder_list_free(&p->known, p->nknown);
	imap_folder_list_free(&p->server);
	p->done(p->ctx, &p->res);
	buf_free(&p->res.new_mail);
	free(p);
}

/* ---- the folder jobs ---- */

static void add_stats(struct folder_stats *sum, const struct folder_stats *s)
{
	sum->down += s->down;
	sum->up += s->up;
	sum->paired += s->paired;
	sum->flags_local += s->flags_local;
	sum->flags_remote += s->flags_remote;
	sum->del_local += s->del_local;
	sum->del_remote += s->del_remote;
	sum->guarded += s->guarded;
	sum->held += s->held;
	sum->messages += s->messages;
	sum->unread += s->unread;
}

static void on_folder_done(void *ctx, int rc, const struct err *err,
			   const struct folder_stats *stats)
{
	struct pass_job *pj = ctx;
	struct pass *p = pj->pass;
	if (rc < 0)
		record_failure(p, rc, err);
	add_stats(&p->res.sum, stats);
	p->res.folders++;
	if (stats->down) {
		if (p->res.new_mail.len)
			buf_putc(&p->res.new_mail, '\n');
		buf_puts(&p->res.new_mail, pj->row.name);
	}
	if (stats->down || stats->up || stats->flags_local || stats->flags_remote ||
	    stats->del_local || stats->del_remote)
		log_info("account=%s folder=\"%s\" event=synced down=%u up=%u flags=%u deletes=%u",
			 p->a->name, pj->row.name, stats->down, stats->up,
			 stats->flags_local + stats->flags_remote,
			 stats->del_local + stats->del_remote);
	if (--p->running == 0)
		finish(p);
}

static void on_job_conn(void *ctx, struct imap_client *c, const struct err *err)
{
	struct pass_job *pj = ctx;
	if (!c) {
		folder_job_fail(pj->job, err);
		return;
	}
	pj->c = c;
	folder_job_run(pj->job, c);
}

static void release_after(void *ctx, int rc, const struct err *err,
			  const struct folder_stats *stats);

/* LIST-STATUS said nothing moved on the server, and the Maildir's
 * directories say nothing moved there: no need to even SELECT. */
static bool unchanged(const struct pass *p, const struct pass_job *pj)
{
	const struct folder_entry *e = pj->entry;
	const struct state_folder *k = &pj->row;
	if (p->opts.force_scan || !p->status_fresh || !e->status.known || !p->has_condstore ||
	    !k->highestmodseq || !k->new_mtime.tv_sec)
		return false;
	if (e->status.uidvalidity != k->uidvalidity || e->status.uidnext != k->uidnext ||
	    e->status.highestmodseq != k->highestmodseq || e->status.messages != k->messages)
		return false;
	struct maildir *m;
	struct maildir_stamp now;
	struct err err;
	if (maildir_open(&m, pj->path, k->name, &err) < 0)
		return false;
	int rc = maildir_stamp_read(m, &now, &err);
	maildir_free(&m);
	return rc == 0 && now.new_mtime.tv_sec == k->new_mtime.tv_sec &&
	       now.new_mtime.tv_nsec == k->new_mtime.tv_nsec &&
	       now.cur_mtime.tv_sec == k->cur_mtime.tv_sec &&
	       now.cur_mtime.tv_nsec == k->cur_mtime.tv_nsec;
}

static bool wanted(const struct pass *p, const char *name)
{
	if (!p->opts.only)
		return true;
	for (char *const *o = p->opts.only; *o; o++)
		if (strcmp(*o, name) == 0)
			return true;
	return false;
}

static void start_jobs(struct pass *p)
{
	const char *trash = folders_special(&p->set, FOLDER_TRASH);
	p->running = 1; /* held until every job is started */
	for (size_t i = 0; i < p->njobs; i++) {
		struct pass_job *pj = &p->jobs[i];
		if (p->moving && p->moving[i].hold) {
			log_warn("account=%s folder=\"%s\" not synced now: a move from or to it "
				 "is unresolved",
				 p->a->name, pj->row.name);
			continue;
		}
		/* A folder named by an event is synced whatever LIST-STATUS says:
		 * Dovecot's answer can lag behind the change the event reports. */
		if (!wanted(p, pj->row.name) || (!p->opts.only && unchanged(p, pj))) {
			p->res.skipped++;
			p->res.sum.messages += pj->row.messages;
			p->res.sum.unread += pj->row.unread;
			continue;
		}
		struct folder_ctx fc = {
			.account = p->a,
			.st = p->st,
			.folder = &pj->row,
			.local_path = pj->path,
			.trash = trash,
			.allow_mass_delete = p->opts.allow_mass_delete,
			.force_scan = p->opts.force_scan,
			.watch = p->opts.watch,
			.hold_copies_ms = p->opts.hold_copies_ms,
		};
		pj->job = folder_job_new(&fc, release_after, pj);
		struct pool_user user = folder_job_user(pj->job);
		p->running++;
		pool_acquire(p->pool, 0, &user, on_job_conn, pj);
	}
	if (--p->running == 0)
		finish(p);
}

/* A job ends: its connection goes back to the pool for the next job. */
static void release_after(void *ctx, int rc, const struct err *err,
			  const struct folder_stats *stats)
{
	struct pass_job *pj = ctx;
	if (pj->c)
		pool_release(pj->pass->pool, pj->c);
	pj->c = NULL;
	on_folder_done(pj, rc, err, stats);
}

static void on_moves(void *ctx, unsigned moved, int rc, const struct err *err)
{
	struct pass *p = ctx;
	p->res.moves = moved;
	if (rc < 0) {
		p->res.failures++;
		if (p->res.rc == 0) {
			p->res.rc = rc;
			p->res.err = *err;
		}
	}
	start_jobs(p);
}

/* Moves touch two folders, so they go before the folder jobs. */
static void run_moves(struct pass *p)
{
	pool_release(p->pool, p->c);
	p->c = NULL;
	p->moving = xcalloc(p->njobs + 1, sizeof(*p->moving));
	for (size_t i = 0; i < p->njobs; i++)
		p->moving[i] = (struct moves_folder){ &p->jobs[i].row, p->jobs[i].path, false };
	moves_run(p->pool, p->st, p->a, p->moving, p->njobs, on_moves, p);
}

/* ---- folders: created, removed, matched ---- */

static int add_job(struct pass *p, struct folder_entry *e, struct err *err)
{
	p->jobs = xrealloc(p->jobs, (p->njobs + 1) * sizeof(*p->jobs));
	struct pass_job *pj = &p->jobs[p->njobs];
	*pj = (struct pass_job){ .pass = p, .entry = e };
	int rc = state_folder_get(p->st, e->name, e->rel, &pj->row, err);
	if (rc < 0)
		return rc;
	pj->path = xasprintf("%s%s%s", p->a->maildir, pj->row.path[0] ? "/" : "", pj->row.path);
	p->njobs++;
	return 0;
}

/* The folder row's last_result once the removal was reported. */
#define GONE_NOTED "removed on the server; Maildir kept"

/* A folder the server no longer has: its Maildir is kept (mailferry never
 * deletes local mail for a folder, see docs/SYNC.md). The state keeps the
 * folder too: forgotten, its Maildir would look like one the user made and
 * be created on the server again, every message uploaded. With
 * remove_folders set for this side, the warning is given once. */
static void server_gone(struct pass *p, struct folder_entry *e)
{
	enum folder_policy rm = p->a->imap->remove_folders;
	struct err err;
	if (rm == FOLDERS_BOTH || rm == FOLDERS_LOCAL) {
		if (strcmp(e->known->last_result, GONE_NOTED) == 0)
			return;
		log_warn("account=%s %s; its Maildir %s is kept and no longer synced", p->a->name,
			 e->why, e->rel);
		struct state_folder f = *e->known;
		f.last_result = GONE_NOTED;
		if (state_folder_save(p->st, &f, &err) < 0)
			record_failure(p, -EIO, &err);
	} else {
		log_warn("account=%s %s; its Maildir %s is kept (remove_folders = \"%s\")",
			 p->a->name, e->why, e->rel, rm == FOLDERS_NONE ? "none" : "remote");
	}
}

static void on_created(void *ctx, const struct imap_reply *reply)
{
	struct pass_job *pj = ctx;
	struct pass *p = pj->pass;
	if (reply->status != IMAP_STATUS_OK) {
		/* The server's answer alone does not say which folder it refused. */
		struct err err = reply->err;
		err_prefix(&err, "folder %s: creating it on the server", pj->entry->name);
		record_failure(p, -EPROTO, &err);
		pj->entry->fate = FATE_SKIP;
	} else {
		log_info("account=%s folder=\"%s\" event=created-on-server", p->a->name,
			 pj->entry->name);
	}
	if (--p->creating == 0) {
		/* Jobs whose folder could not be created are dropped. */
		size_t k = 0;
		for (size_t i = 0; i < p->njobs; i++) {
			if (p->jobs[i].entry->fate == FATE_SKIP) {
				state_folder_clear(&p->jobs[i].row);
				free(p->jobs[i].path);
				continue;
			}
			p->jobs[k++] = p->jobs[i];
		}
		p->njobs = k;
		run_moves(p);
	}
}

static void create_on_server(struct pass *p, struct pass_job *pj)
{
	struct imap_cmd *cmd = imap_cmd_new(p->c, "CREATE");
	struct err err;
	if (imap_cmd_mailbox(cmd, pj->entry->name, &err) < 0) {
		imap_cmd_free(&cmd);
		record_failure(p, -EINVAL, &err);
		pj->entry->fate = FATE_SKIP;
		return;
	}
	p->creating++;
	imap_cmd_send(cmd, on_created, pj);
}

static void settle_folders(struct pass *p)
{
	struct err err;
	size_t ncreate = 0;
	for (size_t i = 0; i < p->set.n; i++) {
		struct folder_entry *e = &p->set.v[i];
		switch (e->fate) {
		case FATE_SKIP:
			log_warn("account=%s %s", p->a->name, e->why);
			break;
		case FATE_GONE_REMOTE:
			server_gone(p, e);
			break;
		case FATE_GONE_LOCAL:
			/* Its messages are still on the server: fetch them again rather
			 * than read the missing Maildir as a wish to delete them all. */
			log_warn("account=%s %s; fetching it again", p->a->name, e->why);
			if (state_folder_delete(p->st, e->known->id, &err) < 0 ||
			    add_job(p, e, &err) < 0)
				record_failure(p, -EIO, &err);
			break;
		case FATE_CREATE_REMOTE:
		case FATE_SYNC:
			if (add_job(p, e, &err) < 0) {
				record_failure(p, -EIO, &err);
				e->fate = FATE_SKIP;
			}
			ncreate += e->fate == FATE_CREATE_REMOTE;
			break;
		}
	}
	for (size_t i = 0; i < p->njobs && ncreate; i++)
		if (p->jobs[i].entry->fate == FATE_CREATE_REMOTE)
			create_on_server(p, &p->jobs[i]);
	if (p->creating == 0)
		run_moves(p);
}

static void on_list(void *ctx, struct imap_folder_list *list, const struct imap_reply *reply)
{
	struct pass *p = ctx;
	struct err err;
	if (reply->status != IMAP_STATUS_OK) {
		record_failure(p, -EPROTO, &reply->err);
		pool_release(p->pool, p->c);
		finish(p);
		return;
	}
	p->server = *list;
	p->has_condstore = imap_client_has(p->c, CAP_CONDSTORE);
	int rc = state_folder_list(p->st, &p->known, &p->nknown, &err);
	if (rc == 0)
		rc = maildir_tree_list(&p->tree, p->a->maildir, (enum maildir_layout)p->a->layout,
				       folders_delimiter(&p->server), &err);
	if (rc == -ENOENT)
		rc = 0; /* no Maildir yet: the folders' Maildirs create it */
	if (rc < 0) {
		record_failure(p, rc, &err);
		pool_release(p->pool, p->c);
		finish(p);
		return;
	}
	folders_plan(p->a, &p->server, p->known, p->nknown, &p->tree, &p->set);
	settle_folders(p);
}

static void ignore_reply(void *ctx, const struct imap_reply *reply)
{
	(void)ctx;
	(void)reply; /* NO: nothing was selected, which is what we wanted */
}

static void on_first_conn(void *ctx, struct imap_client *c, const struct err *err)
{
	struct pass *p = ctx;
	if (!c) {
		record_failure(p, -EIO, err);
		finish(p);
		return;
	}
	p->c = c;
	/* Dovecot answers STATUS for the folder selected on this connection (a
	 * job of an earlier pass left it there) with the session's old view,
	 * so the connection leaves it first; without UNSELECT no answer is
	 * trusted to skip a folder. */
	p->status_fresh = imap_client_has(c, CAP_UNSELECT);
	if (p->status_fresh)
		imap_cmd_send(imap_cmd_new(c, "UNSELECT"), ignore_reply, p);
	imap_list(c, true, on_list, p);
}

static void ignore_untagged(void *ctx, struct imap_response *r)
{
	(void)ctx;
	(void)r;
}

static void begin(struct pass *p)
{
	struct pool_user user = { ignore_untagged, p };
	pool_acquire(p->pool, 0, &user, on_first_conn, p);
}

static bool interrupted_sends(struct state *st)
{
	struct state_msgs rows = { 0 };
	struct err e;
	bool any = false;
	if (state_msg_pending(st, &rows, &e) == 0)
		for (size_t i = 0; i < rows.n && !any; i++)
			any = rows.v[i].state == STATE_UPLOADING || rows.v[i].state == STATE_MOVING;
	state_msgs_free(&rows);
	return any;
}

struct interrupted_wait {
	uv_timer_t timer;
	struct pass *p;
};

static void free_wait(uv_handle_t *h)
{
	free(h->data);
}

static void on_waited(uv_timer_t *t)
{
	struct interrupted_wait *w = t->data;
	begin(w->p);
	uv_close((uv_handle_t *)t, free_wait);
}

void sync_pass(uv_loop_t *loop, struct sync_pool *pool, struct state *st,
	       const struct account_conf *a, const struct pass_opts *o, pass_done_cb done,
	       void *ctx)
{
	struct pass *p = xcalloc(1, sizeof(*p));
	p->loop = loop;
	p->pool = pool;
	p->st = st;
	p->a = a;
	p->opts = *o;
	p->done = done;
	p->ctx = ctx;
	p->start = uv_hrtime() / 1000000;
	if (!interrupted_sends(st)) {
		begin(p);
		return;
	}
	log_info("account=%s event=interrupted-sends wait_ms=%d: an upload or move was cut "
		 "off; giving the server time to finish it before looking for its copy",
		 a->name, INTERRUPTED_WAIT_MS);
	struct interrupted_wait *w = xcalloc(1, sizeof(*w));
	w->p = p;
	uv_timer_init(loop, &w->timer);
	w->timer.data = w;
	uv_timer_start(&w->timer, on_waited, INTERRUPTED_WAIT_MS, 0);
}
