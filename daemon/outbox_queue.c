#include "outbox_queue.h"

#include "backoff.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "maildir/folder.h"
#include "outbox/paths.h"
#include "watch/watch.h"

#include <errno.h>
#include <string.h>
#include <time.h>

/* Messages landing this close together go out in one drain. */
#define DEBOUNCE_MS 20
/* Without a watcher (no inotify left) the outbox is looked at this often. */
#define POLL_MS (60 * 1000)

struct outbox_queue {
	uv_loop_t *loop;
	const struct account_conf *conf; /* borrowed */
	outbox_filed_cb filed;
	void *ctx;
	char *dir;
	struct outbox_sender *sender; /* owned */
	struct watch *watch;	      /* owned; NULL without inotify */
	uv_timer_t debounce, wake;    /* embedded: freed after their close callbacks */
	unsigned failures;	      /* drains in a row that failed as a whole */
	bool paused;
	unsigned handles_open;
};

static void drain(struct outbox_queue *q);

static void on_wake(uv_timer_t *t)
{
	drain(t->data);
}

/* When to look again: the first waiting message's time, or the backoff after
 * a drain that failed as a whole, whichever comes first. */
static void schedule(struct outbox_queue *q, const struct outbox_report *r)
{
	bool wake = false;
	uint64_t ms = 0;
	if (r->rc < 0 && r->queued_total) {
		q->failures++;
		struct backoff b = backoff_decide(&r->err, q->failures, backoff_random());
		ms = b.ms;
		wake = true;
		log_warn("account=%s outbox event=backoff seconds=%.1f reason=%s queued=%u: %s: %s",
			 q->conf->name, (double)ms / 1000, backoff_reason_name(b.reason),
			 r->queued_total, backoff_why(b.reason), r->err.msg);
	} else if (r->rc == 0) {
		q->failures = 0;
	}
	if (r->next_try) {
		/* next_try is in whole seconds: a little after it, it is due. */
		int64_t in_ms = (r->next_try - (int64_t)time(NULL)) * 1000 + 100;
		uint64_t due = in_ms > 0 ? (uint64_t)in_ms : 0;
		ms = wake && ms < due ? ms : due;
		wake = true;
	}
	if (!q->watch && (!wake || ms > POLL_MS)) {
		ms = POLL_MS;
		wake = true;
	}
	if (wake)
		uv_timer_start(&q->wake, on_wake, ms, 0);
}

static void on_drained(void *ctx, const struct outbox_report *r)
{
	struct outbox_queue *q = ctx;
	if (r->sent || r->failed)
		log_info("account=%s event=outbox sent=%u failed=%u queued=%u", q->conf->name,
			 r->sent, r->failed, r->queued_total);
	if (r->filed && q->filed)
		q->filed(q->ctx);
	schedule(q, r);
}

static void drain(struct outbox_queue *q)
{
	uv_timer_stop(&q->debounce);
	if (q->paused)
		return; /* the resume drains */
	uv_timer_stop(&q->wake);
	outbox_drain(q->sender, false, on_drained, q);
}

/* ---- the watcher ---- */

/* (Re)creates the outbox and watches it: at start, and when a user removed
 * the directory under the daemon. */
static void watch_outbox(struct outbox_queue *q)
{
	struct err e;
	watch_forget(q->watch, q->dir);
	if (maildir_ensure(q->dir, &e) < 0 || watch_folder(q->watch, q->dir, &e) < 0)
		log_warn("account=%s outbox: %s", q->conf->name, e.msg);
}

static void on_debounce(uv_timer_t *t)
{
	drain(t->data);
}

static void on_watch(void *ctx, const char *folder, unsigned what)
{
	struct outbox_queue *q = ctx;
	(void)folder;
	if (what & WATCH_FOLDERS)
		watch_outbox(q);
	if (!uv_is_active((uv_handle_t *)&q->debounce))
		uv_timer_start(&q->debounce, on_debounce, DEBOUNCE_MS, 0);
}

/* ---- life ---- */

struct outbox_queue *outbox_queue_start(uv_loop_t *loop, const struct account_conf *conf,
					outbox_filed_cb filed, void *ctx)
{
	struct outbox_queue *q = xcalloc(1, sizeof(*q));
	struct err e;
	q->loop = loop;
	q->conf = conf;
	q->filed = filed;
	q->ctx = ctx;
	q->dir = outbox_dir(conf);
	uv_timer_init(loop, &q->debounce);
	uv_timer_init(loop, &q->wake);
	q->debounce.data = q->wake.data = q;
	q->watch = watch_new(loop, on_watch, q, &e);
	if (q->watch)
		watch_outbox(q);
	else
		log_warn("account=%s outbox: %s; looking at it every %d s instead", conf->name,
			 e.msg, POLL_MS / 1000);
	q->sender = outbox_sender_new(loop, conf, q->watch);
	log_debug("account=%s event=outbox-watching dir=%s", conf->name, q->dir);
	drain(q); /* what came while the daemon was stopped */
	return q;
}

static void on_closed(uv_handle_t *h)
{
	struct outbox_queue *q = h->data;
	if (--q->handles_open > 0)
		return;
	free(q->dir);
	free(q);
}

void outbox_queue_free(struct outbox_queue **qp)
{
	struct outbox_queue *q = *qp;
	if (!q)
		return;
	*qp = NULL;
	outbox_sender_free(&q->sender); /* before the watcher it tells of its removals */
	watch_free(&q->watch);
	q->handles_open = 2;
	uv_close((uv_handle_t *)&q->debounce, on_closed);
	uv_close((uv_handle_t *)&q->wake, on_closed);
}

void outbox_queue_kick(struct outbox_queue *q)
{
	q->failures = 0;
	drain(q);
}

void outbox_queue_pause(struct outbox_queue *q, bool paused)
{
	q->paused = paused;
	if (!paused)
		drain(q);
}

/* ---- for mailferryctl ---- */

const char *outbox_queue_sending(const struct outbox_queue *q)
{
	return outbox_sender_current(q->sender);
}

const struct outbox_refusal *outbox_queue_refusals(const struct outbox_queue *q, size_t *n)
{
	return outbox_sender_refusals(q->sender, n);
}

int outbox_queue_list(const struct outbox_queue *q, struct outbox_entry **v, size_t *n,
		      struct err *e)
{
	return outbox_list_read(q->dir, OUTBOX_LIST_HEADERS, v, n, e);
}

int outbox_queue_counts(const struct outbox_queue *q, struct outbox_counts *c, struct err *e)
{
	struct outbox_entry *v;
	size_t n;
	*c = (struct outbox_counts){ 0 };
	int rc = outbox_list_read(q->dir, 0, &v, &n, e);
	const char *sending = outbox_sender_current(q->sender);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const struct outbox_status *st = &v[i].st;
		if (strcmp(outbox_entry_state(&v[i], sending), "failed") == 0) {
			c->failed++;
			continue;
		}
		c->queued++;
		if (st->state == OUTBOX_QUEUED && st->next_try &&
		    (!c->next_try || st->next_try < c->next_try))
			c->next_try = st->next_try;
	}
	outbox_list_free(&v, n);
	return rc;
}

/* Finds the message id (exactly) in a fresh listing; -ENOENT or -EBUSY (on
 * the wire) with e set. */
static int find(struct outbox_queue *q, const char *id, struct outbox_entry **v, size_t *n,
		struct err *e)
{
	int rc = outbox_list_read(q->dir, 0, v, n, e);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*v)[i].id, id) == 0) {
			const char *cur = outbox_sender_current(q->sender);
			if (cur && strcmp(cur, id) == 0)
				return err_set(e, -EBUSY, ERR_TEMP, "%s is being sent now", id);
			return (int)i;
		}
	return err_set(e, -ENOENT, ERR_LOCAL, "no message %s in the outbox of %s", id,
		       q->conf->name);
}

int outbox_queue_retry(struct outbox_queue *q, const char *id, struct err *e)
{
	struct outbox_entry *v = NULL;
	size_t n = 0;
	int i = find(q, id, &v, &n, e);
	int rc = i < 0 ? i : outbox_entry_requeue(q->dir, &v[i], e);
	if (rc == 0) {
		log_info("account=%s outbox message=%s event=retry", q->conf->name, id);
		drain(q);
	}
	outbox_list_free(&v, n);
	return rc;
}

int outbox_queue_drop(struct outbox_queue *q, const char *id, struct err *e)
{
	struct outbox_entry *v = NULL;
	size_t n = 0;
	int i = find(q, id, &v, &n, e);
	if (i >= 0 && q->watch)
		watch_expect(q->watch, q->dir, v[i].file, WATCH_LEAVE);
	int rc = i < 0 ? i : outbox_entry_drop(q->dir, &v[i], e);
	if (rc == 0)
		log_info("account=%s outbox message=%s event=dropped", q->conf->name, id);
	outbox_list_free(&v, n);
	return rc;
}
