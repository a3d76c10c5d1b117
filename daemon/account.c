#include "account.h"

#include "backoff.h"
#include "hooks.h"
#include "outbox_queue.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "outbox/paths.h"
#include "pop3/fetch.h"
#include "state/state.h"
#include "sync/pass.h"
#include "sync/pool.h"
#include "sync/push.h"
#include "watch/watch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A reader's changes closer together than this become one pass. */
#define DEBOUNCE_MS 30
/* The server's news comes coalesced already (Dovecot holds it ~500 ms): a
 * pass starts as soon as the lines read together are handled. */
#define PUSH_DEBOUNCE_MS 1
/* A fresh copy of a known message waits this long for the other half of a
 * move (sync/transfer.c); then it is looked at again. */
#define HOLD_COPIES_MS 5000
/* A wall clock that moved this much more than the loop's clock: the machine
 * slept or the clock was set; connections may be dead, mail may be waiting. */
#define CLOCK_CHECK_MS 30000
#define CLOCK_JUMP_S 10

struct watched {
	char *path, *name;
};

struct waiter {
	struct waiter *next;
	account_done_cb done;
	void *ctx;
};

struct account {
	uv_loop_t *loop;
	const struct account_conf *conf;
	const struct general_conf *general;
	struct account_events ev;
	struct hook *new_mail_hook, *post_sync_hook;
	bool ready; /* ev.ready ran */
	struct state *st;
	struct sync_pool *pool;
	struct pop3_fetch *fetch; /* POP3: the running fetch */
	struct push *push;
	struct watch *watch;
	struct outbox_queue *outbox; /* with an smtp block */
	uv_timer_t debounce, poll, retry, clock, recheck;

	bool running;	  /* a pass is running */
	bool all_dirty;	  /* the next pass takes every folder */
	char **dirty;	  /* or these */
	size_t ndirty, capdirty;
	char **pass_only; /* the running pass's folder list, freed when it ends */
	bool force_scan;
	bool synced_once; /* push starts after the first good pass */
	bool push_down;	  /* push waits for the retry timer */

	unsigned failures;
	enum backoff_reason waiting_for; /* why the retry timer runs, while it does */
	int64_t clock_real;
	uint64_t clock_mono;

	struct watched *watched;
	size_t nwatched;

	bool paused, started;
	int64_t last_sync;
	struct err last_err;

	/* sync --wait: callbacks for the next pass, and those of the running one */
	struct waiter *waiting, *in_pass;
	bool next_allow_mass_delete;

	bool stopping;
	unsigned handles_open;
	void (*stopped)(void *ctx);
	void *stopped_ctx;
};

static void start_push(struct account *a);
static void tell_ready(struct account *a);

static void tell_changed(struct account *a)
{
	if (a->ev.changed)
		a->ev.changed(a->ev.ctx, a);
}
static void on_poll(uv_timer_t *t);

static uint64_t poll_ms_of(const struct account *a)
{
	int s = a->conf->imap ? a->conf->imap->poll_interval : a->conf->pop3->poll_interval;
	return (uint64_t)s * 1000;
}

const char *account_name(const struct account *a)
{
	return a->conf->name;
}

struct outbox_queue *account_outbox(const struct account *a)
{
	return a->outbox;
}

/* ---- scheduling ---- */

static void on_debounce(uv_timer_t *t);

static void sync_after(struct account *a, const char *folder, uint64_t delay_ms)
{
	if (a->stopping || a->paused)
		return;
	if (!folder) {
		a->all_dirty = true;
	} else {
		bool known = false;
		for (size_t i = 0; i < a->ndirty && !known; i++)
			known = strcmp(a->dirty[i], folder) == 0;
		if (!known) {
			a->dirty = xgrow(a->dirty, &a->capdirty, a->ndirty + 2, sizeof(char *));
			a->dirty[a->ndirty++] = xstrdup(folder);
			a->dirty[a->ndirty] = NULL;
		}
	}
	if (!a->running && !uv_is_active((uv_handle_t *)&a->retry))
		uv_timer_start(&a->debounce, on_debounce, delay_ms, 0);
}

void account_sync(struct account *a, const char *folder)
{
	sync_after(a, folder, DEBOUNCE_MS);
}

static void clear_dirty(struct account *a)
{
	for (size_t i = 0; i < a->ndirty; i++)
		free(a->dirty[i]);
	a->ndirty = 0;
	if (a->dirty)
		a->dirty[0] = NULL;
	a->all_dirty = false;
}

/* How long to wait after a failure, and why (backoff.h). A wait already
 * running that ends later is kept, with its reason: push losing its
 * connection to a server that throttles must not cut short the wait the
 * server asked for. */
static struct backoff retry_delay(struct account *a, const struct err *err)
{
	struct backoff b = backoff_decide(err, a->failures, backoff_random());
	if (uv_is_active((uv_handle_t *)&a->retry) && uv_timer_get_due_in(&a->retry) > b.ms) {
		b.ms = uv_timer_get_due_in(&a->retry);
		b.reason = a->waiting_for;
	}
	return b;
}

static void on_retry(uv_timer_t *t)
{
	struct account *a = t->data;
	if (a->push_down) {
		a->push_down = false;
		start_push(a);
	}
	a->all_dirty = true;
	uv_timer_start(&a->debounce, on_debounce, 0, 0);
}

static void back_off(struct account *a, const struct err *err)
{
	a->failures++;
	struct backoff b = retry_delay(a, err);
	a->waiting_for = b.reason;
	log_warn("account=%s event=backoff seconds=%.1f reason=%s: %s: %s", a->conf->name,
		 (double)b.ms / 1000, backoff_reason_name(b.reason), backoff_why(b.reason),
		 err->msg);
	/* What the failed pass marked dirty (folders watched anew) waits too. */
	uv_timer_stop(&a->debounce);
	uv_timer_start(&a->retry, on_retry, b.ms, 0);
	tell_changed(a);
}

/* ---- the Maildir watcher ---- */

static void forget_watched(struct account *a)
{
	for (size_t i = 0; i < a->nwatched; i++) {
		free(a->watched[i].path);
		free(a->watched[i].name);
	}
	free(a->watched);
	a->watched = NULL;
	a->nwatched = 0;
}

static void on_watch(void *ctx, const char *path, unsigned what)
{
	struct account *a = ctx;
	if (what & WATCH_OVERFLOW)
		a->force_scan = true;
	if (what & (WATCH_OVERFLOW | WATCH_FOLDERS)) {
		account_sync(a, NULL);
		return;
	}
	for (size_t i = 0; i < a->nwatched; i++)
		if (strcmp(a->watched[i].path, path) == 0) {
			account_sync(a, a->watched[i].name);
			return;
		}
}

static bool was_watched(const struct watched *v, size_t n, const char *path)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].path, path) == 0)
			return true;
	return false;
}

/* Watches every synced folder's Maildir, and the directories where a reader
 * may create a folder: the root, and in the verbatim layout each folder. A
 * folder watched for the first time is synced once more: a reader may have
 * changed it between the pass that made it and now. */
static void refresh_watches(struct account *a)
{
	struct state_folder *folders;
	size_t n;
	struct err err;
	if (!a->watch || state_folder_list(a->st, &folders, &n, &err) < 0)
		return;
	struct watched *old = a->watched;
	size_t nold = a->nwatched;
	a->watched = xcalloc(n + 1, sizeof(*a->watched));
	a->nwatched = 0;
	watch_tree(a->watch, a->conf->maildir, &err);
	for (size_t i = 0; i < n; i++) {
		char *path = xasprintf("%s%s%s", a->conf->maildir, folders[i].path[0] ? "/" : "",
				       folders[i].path);
		if (watch_folder(a->watch, path, &err) < 0) {
			log_warn("account=%s %s", a->conf->name, err.msg);
			free(path);
			continue;
		}
		if (a->conf->layout == LAYOUT_VERBATIM)
			watch_tree(a->watch, path, &err);
		if (!was_watched(old, nold, path))
			log_debug("account=%s folder=\"%s\" event=watching", a->conf->name,
				  folders[i].name);
		if (old && !was_watched(old, nold, path))
			account_sync(a, folders[i].name);
		a->watched[a->nwatched++] = (struct watched){ path, xstrdup(folders[i].name) };
	}
	state_folder_list_free(&folders, n);
	struct watched *fresh = a->watched;
	size_t nfresh = a->nwatched;
	a->watched = old, a->nwatched = nold;
	forget_watched(a);
	a->watched = fresh, a->nwatched = nfresh;
}

/* ---- passes ---- */

static void finish_stop(struct account *a);

static void free_list(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static void on_pass(void *ctx, const struct pass_result *r)
{
	struct account *a = ctx;
	a->running = false;
	free_list(a->pass_only);
	a->pass_only = NULL;
	if (a->stopping) {
		finish_stop(a);
		return;
	}
	const struct folder_stats *s = &r->sum;
	if (s->down || s->up || s->flags_local || s->flags_remote || r->moves || s->del_local ||
	    s->del_remote)
		log_info("account=%s event=sync down=%u up=%u flags=%u moves=%u deletes=%u ms=%llu",
			 a->conf->name, s->down, s->up, s->flags_local + s->flags_remote, r->moves,
			 s->del_local + s->del_remote, (unsigned long long)r->ms);
	if (r->rc == 0) {
		a->last_sync = (int64_t)time(NULL);
		err_clear(&a->last_err);
	} else {
		a->last_err = r->err;
	}
	for (struct waiter *w = a->in_pass, *next; w; w = next) {
		next = w->next;
		w->done(w->ctx, r->rc, r->rc < 0 ? &r->err : NULL);
		free(w);
	}
	a->in_pass = NULL;
	refresh_watches(a);
	if (r->sum.held && !uv_is_active((uv_handle_t *)&a->recheck))
		uv_timer_start(&a->recheck, on_poll, HOLD_COPIES_MS + 100, 0);
	if (r->sum.down)
		hook_trigger(a->new_mail_hook, r->sum.down, buf_str(&r->new_mail));
	hook_trigger(a->post_sync_hook, r->sum.down, buf_str(&r->new_mail));
	tell_ready(a);
	/* A folder's own trouble (a refusal, a full disk) waits for the next
	 * event or poll; the server or the network gone means a reconnect, and
	 * a server that limits the account is left alone for the wait. */
	if (r->rc < 0 && (((r->err.cls == ERR_TEMP || r->err.cls == ERR_AUTH) &&
			   r->folders == 0) ||
			  backoff_server_limit(&r->err))) {
		back_off(a, &r->err);
		return;
	}
	if (a->failures && a->outbox) /* the network is back */
		outbox_queue_kick(a->outbox);
	a->failures = 0;
	if (!a->synced_once) {
		a->synced_once = true;
		start_push(a);
	}
	if (a->all_dirty || a->ndirty)
		uv_timer_start(&a->debounce, on_debounce, DEBOUNCE_MS, 0);
	tell_changed(a);
}

/* A POP3 fetch ends like a pass: the same bookkeeping, hooks and backoff. */
static void on_fetch(void *ctx, const struct pop3_fetch_result *fr)
{
	struct account *a = ctx;
	struct pass_result r = { .rc = fr->rc, .err = fr->err, .failures = fr->failures,
				 .ms = fr->ms };
	a->fetch = NULL;
	if (fr->rc == 0)
		r.folders = 1;
	r.sum.down = fr->fetched;
	r.sum.del_remote = fr->deleted;
	r.sum.messages = fr->on_server;
	if (fr->fetched)
		buf_puts(&r.new_mail, "INBOX");
	on_pass(a, &r);
	buf_free(&r.new_mail);
}

static void on_debounce(uv_timer_t *t)
{
	struct account *a = t->data;
	if (a->running || a->stopping || a->paused || (!a->all_dirty && !a->ndirty))
		return;
	struct pass_opts opts = {
		.only = a->all_dirty ? NULL : a->dirty,
		.force_scan = a->force_scan,
		.watch = a->watch,
		.allow_mass_delete = a->next_allow_mass_delete,
		.hold_copies_ms = HOLD_COPIES_MS,
	};
	a->next_allow_mass_delete = false;
	a->in_pass = a->waiting;
	a->waiting = NULL;
	/* The pass copies nothing: hand it the list and start a fresh one. */
	char **only = a->all_dirty ? NULL : a->dirty;
	if (only) {
		a->dirty = NULL;
		a->ndirty = a->capdirty = 0;
	}
	clear_dirty(a);
	a->force_scan = false;
	a->running = true;
	a->pass_only = only;
	if (a->conf->pop3)
		a->fetch = pop3_fetch_start(a->loop, a->st, a->conf, on_fetch, a);
	else
		sync_pass(a->loop, a->pool, a->st, a->conf, &opts, on_pass, a);
}

/* ---- push ---- */

static void on_push_event(void *ctx, const char *folder)
{
	sync_after(ctx, folder, PUSH_DEBOUNCE_MS);
}

/* The unused connections in the pool may have died as push's did (a NAT
 * that forgot them, a network gone): the next pass would wait out the
 * timeout on each, so they go too; a fresh one costs a login. */
static void on_push_down(void *ctx, const struct err *err)
{
	struct account *a = ctx;
	push_free(&a->push);
	pool_drop_idle(a->pool);
	a->push_down = true;
	back_off(a, err);
}

static void start_push(struct account *a)
{
	if (!a->push && !a->stopping && a->pool)
		a->push = push_start(a->loop, a->pool, a->conf, on_push_event, on_push_down, a);
}

/* ---- the clock ---- */

/* After a suspend the connections are likely dead, and the network may be a
 * new one: as after a wait that ended, push starts anew and every folder is
 * synced, on fresh connections. A wait after a network failure ends now;
 * one the server asked for, or after refused credentials, is kept. */
static void on_resume(struct account *a)
{
	if (a->outbox)
		outbox_queue_kick(a->outbox);
	if (uv_is_active((uv_handle_t *)&a->retry) && a->waiting_for != BACKOFF_FAILURE) {
		account_sync(a, NULL); /* when the wait is over */
		return;
	}
	uv_timer_stop(&a->retry);
	a->failures = 0;
	if (a->pool) {
		push_free(&a->push);
		pool_drop_idle(a->pool);
		a->push_down = a->synced_once; /* else the first good pass starts it */
	}
	on_retry(&a->retry);
}

static void on_clock(uv_timer_t *t)
{
	struct account *a = t->data;
	int64_t real = (int64_t)time(NULL);
	uint64_t mono = uv_now(a->loop);
	int64_t expected = a->clock_real + (int64_t)((mono - a->clock_mono) / 1000);
	if (llabs(real - expected) > CLOCK_JUMP_S) {
		log_info("account=%s event=clock-jump seconds=%lld: syncing", a->conf->name,
			 (long long)(real - expected));
		on_resume(a);
	}
	a->clock_real = real;
	a->clock_mono = mono;
}

static void start_clock(struct account *a)
{
	a->clock_real = (int64_t)time(NULL);
	a->clock_mono = uv_now(a->loop);
	uv_timer_start(&a->clock, on_clock, CLOCK_CHECK_MS, CLOCK_CHECK_MS);
}

static void on_poll(uv_timer_t *t)
{
	account_sync(t->data, NULL);
}

/* ---- life ---- */

struct account *account_new(uv_loop_t *loop, const struct account_conf *conf,
			    const struct general_conf *general, const struct account_events *ev)
{
	struct account *a = xcalloc(1, sizeof(*a));
	a->loop = loop;
	a->conf = conf;
	a->general = general;
	a->ev = *ev;
	unsigned hook_s = (unsigned)conf->hook_timeout;
	a->new_mail_hook = hook_new(loop, conf->name, "new-mail", conf->new_mail_command, hook_s);
	a->post_sync_hook =
	    hook_new(loop, conf->name, "post-sync", conf->post_sync_command, hook_s);
	uv_timer_t *timers[] = { &a->debounce, &a->poll, &a->retry, &a->clock, &a->recheck };
	for (size_t i = 0; i < ARRAY_SIZE(timers); i++) {
		uv_timer_init(loop, timers[i]);
		timers[i]->data = a;
	}
	return a;
}

static void tell_ready(struct account *a)
{
	if (a->ready)
		return;
	a->ready = true;
	if (a->ev.ready)
		a->ev.ready(a->ev.ctx, a);
}

static void on_login(void *ctx)
{
	tell_ready(ctx);
}

/* A POP3 account keeps no connection and has no push: a fetch at start and
 * every poll_interval (and on mailferryctl sync). */
static void start_pop3(struct account *a)
{
	uv_timer_start(&a->poll, on_poll, poll_ms_of(a), poll_ms_of(a));
	start_clock(a);
	log_info("account=%s event=start protocol=pop3 maildir=%s", a->conf->name,
		 a->conf->maildir);
	account_sync(a, NULL);
}

/* The outbox filed Sent copies: the Sent folder goes up now (a POP3
 * account's stays local). A Sent folder the state does not know yet is
 * made on the server by a pass over everything. */
static void on_outbox_filed(void *ctx)
{
	struct account *a = ctx;
	if (!a->conf->imap)
		return;
	char *path = outbox_sent_dir(a->conf);
	const char *name = NULL;
	for (size_t i = 0; path && i < a->nwatched && !name; i++)
		if (strcmp(a->watched[i].path, path) == 0)
			name = a->watched[i].name;
	free(path);
	account_sync(a, name);
}

void account_start(struct account *a)
{
	struct err err;
	if (a->conf->smtp)
		a->outbox = outbox_queue_start(a->loop, a->conf, on_outbox_filed, a);
	if (state_open(a->general->state_dir, a->conf->name, &a->st, &err) < 0) {
		log_error("account=%s not started: %s", a->conf->name, err.msg);
		a->last_err = err;
		tell_ready(a);
		tell_changed(a);
		return;
	}
	a->started = true;
	if (a->conf->pop3) {
		start_pop3(a);
		return;
	}
	a->pool = pool_new(a->loop, a->conf);
	pool_on_login(a->pool, on_login, a);
	a->watch = watch_new(a->loop, on_watch, a, &err);
	if (!a->watch)
		log_warn("account=%s local changes are found by polling only: %s", a->conf->name,
			 err.msg);
	uint64_t poll_ms = poll_ms_of(a);
	uv_timer_start(&a->poll, on_poll, poll_ms, poll_ms);
	start_clock(a);
	refresh_watches(a); /* the folders known from before: watched during the first pass */
	log_info("account=%s event=start maildir=%s", a->conf->name, a->conf->maildir);
	account_sync(a, NULL);
}

static void on_timer_closed(uv_handle_t *h)
{
	struct account *a = h->data;
	if (--a->handles_open > 0)
		return;
	void (*done)(void *) = a->stopped;
	void *ctx = a->stopped_ctx;
	free(a);
	if (done)
		done(ctx);
}

static void fail_waiters(struct waiter **list, const char *name)
{
	struct err err;
	err_set(&err, -ECANCELED, ERR_TEMP, "account %s stopped", name);
	for (struct waiter *w = *list, *next; w; w = next) {
		next = w->next;
		w->done(w->ctx, -ECANCELED, &err);
		free(w);
	}
	*list = NULL;
}

static void on_pool_closed(void *ctx)
{
	struct account *a = ctx;
	fail_waiters(&a->waiting, a->conf->name);
	fail_waiters(&a->in_pass, a->conf->name);
	state_close(&a->st);
	clear_dirty(a);
	free(a->dirty);
	forget_watched(a);
	uv_timer_t *timers[] = { &a->debounce, &a->poll, &a->retry, &a->clock, &a->recheck };
	a->handles_open = ARRAY_SIZE(timers);
	for (size_t i = 0; i < ARRAY_SIZE(timers); i++)
		uv_close((uv_handle_t *)timers[i], on_timer_closed);
}

static void finish_stop(struct account *a)
{
	if (a->pool)
		pool_close(a->pool, on_pool_closed, a);
	else
		on_pool_closed(a);
}

void account_stop(struct account *a, void (*done)(void *ctx), void *ctx)
{
	a->stopping = true;
	a->stopped = done;
	a->stopped_ctx = ctx;
	uv_timer_stop(&a->debounce);
	uv_timer_stop(&a->poll);
	uv_timer_stop(&a->retry);
	uv_timer_stop(&a->clock);
	uv_timer_stop(&a->recheck);
	push_free(&a->push);
	watch_free(&a->watch);
	outbox_queue_free(&a->outbox);
	hook_free(&a->new_mail_hook);
	hook_free(&a->post_sync_hook);
	if (!a->running) {
		finish_stop(a);
		return;
	}
	/* Cut the running pass short: what it committed stays, the rest is
	 * found again at the next start. */
	struct err err;
	err_set(&err, -ECANCELED, ERR_TEMP, "stopping");
	if (a->fetch)
		pop3_fetch_abort(a->fetch, &err);
	else
		pool_abort(a->pool, &err);
}

/* ---- steering (mailferryctl) ---- */

void account_sync_then(struct account *a, const char *folder, bool allow_mass_delete,
		       account_done_cb done, void *ctx)
{
	if (a->stopping || a->paused || !a->started) {
		struct err err;
		err_set(&err, -EAGAIN, ERR_TEMP, "account %s is %s", a->conf->name,
			a->paused ? "paused" : a->started ? "stopping" : "not running");
		if (done)
			done(ctx, -EAGAIN, &err);
		return;
	}
	if (done) {
		struct waiter *w = xcalloc(1, sizeof(*w));
		*w = (struct waiter){ a->waiting, done, ctx };
		a->waiting = w;
	}
	a->next_allow_mass_delete |= allow_mass_delete;
	/* A sync asked for by hand does not wait out a backoff. */
	if (uv_is_active((uv_handle_t *)&a->retry)) {
		uv_timer_stop(&a->retry);
		on_retry(&a->retry);
	}
	account_sync(a, folder);
}

void account_pause(struct account *a)
{
	if (a->paused || a->stopping)
		return;
	a->paused = true;
	uv_timer_stop(&a->debounce);
	uv_timer_stop(&a->poll);
	if (a->outbox)
		outbox_queue_pause(a->outbox, true);
	/* Push stays connected and its news is dropped (account_sync): Dovecot
	 * 2.3 sends nothing more on a connection whose NOTIFY was set a second
	 * time, which a push started again on resume would do. */
	log_info("account=%s event=paused", a->conf->name);
	tell_changed(a);
}

void account_resume(struct account *a)
{
	if (!a->paused)
		return;
	a->paused = false;
	uint64_t poll_ms = poll_ms_of(a);
	uv_timer_start(&a->poll, on_poll, poll_ms, poll_ms);
	log_info("account=%s event=resumed", a->conf->name);
	tell_changed(a);
	if (a->synced_once)
		start_push(a); /* if it went down meanwhile */
	/* What happened while paused was dropped, not queued: look at every
	 * folder for real. LIST-STATUS is no guide here: Dovecot answers it for
	 * a folder still selected on that connection as the session last saw
	 * it, without the mail that came meanwhile. */
	a->force_scan = true;
	account_sync(a, NULL);
	if (a->outbox)
		outbox_queue_pause(a->outbox, false);
}

/* The extensions the account's connections use: push by NOTIFY, else IDLE;
 * QRESYNC when enabled; the others when offered. */
static void used_caps(const struct account *a, char *out, size_t size)
{
	static const enum imap_cap shown[] = { CAP_NOTIFY, CAP_IDLE, CAP_QRESYNC,
					       CAP_CONDSTORE, CAP_MOVE, CAP_UIDPLUS };
	struct imap_caps caps;
	bool qresync;
	out[0] = '\0';
	if (!a->pool || !pool_caps(a->pool, &caps, &qresync))
		return;
	size_t len = 0;
	for (size_t i = 0; i < ARRAY_SIZE(shown); i++) {
		enum imap_cap c = shown[i];
		bool used = c == CAP_QRESYNC ? qresync
			    : c == CAP_IDLE  ? imap_caps_has(&caps, c) &&
						  !imap_caps_has(&caps, CAP_NOTIFY)
					     : imap_caps_has(&caps, c);
		if (used)
			len += (size_t)snprintf(out + len, size - len, "%s%s", len ? " " : "",
						imap_cap_name(c));
	}
}

void account_status(const struct account *a, struct account_status *out)
{
	bool backoff = uv_is_active((const uv_handle_t *)&a->retry);
	/* A pass due in a few milliseconds (news debounced) counts as running:
	 * "idle" promises the Maildir and the server agree as far as we know. */
	bool due = uv_is_active((const uv_handle_t *)&a->debounce);
	*out = (struct account_status){
		.name = a->conf->name,
		.state = !a->started	   ? "failed"
			 : a->paused	   ? "paused"
			 : a->running || due ? "syncing"
			 : backoff    ? "backoff"
			 : !a->synced_once ? "starting"
					  : "idle",
		.push = a->push ? push_mode(a->push) : "none",
		.last_sync = a->last_sync,
		.last_error = a->last_err.msg,
		.retry_in_ms = backoff ? uv_timer_get_due_in(&a->retry) : 0,
		.protocol = a->conf->imap ? "imap" : "pop3",
		.connections = a->pool ? pool_size(a->pool) : a->fetch != NULL,
		.st = a->st,
	};
	used_caps(a, out->caps, sizeof(out->caps));
}
