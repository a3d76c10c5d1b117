#include "outbox/sender.h"

#include "config/secret.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "maildir/deliver.h"
#include "maildir/flags.h"
#include "maildir/path.h"
#include "maildir/scan.h"
#include "outbox/message.h"
#include "outbox/paths.h"
#include "outbox/status.h"
#include "smtp/client.h"
#include "smtp/reply.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A message that failed for now waits 1, 2, 4 ... minutes, at most 1 hour. */
#define RETRY_FIRST_S 60
#define RETRY_MAX_S 3600

struct item {
	char *base, *file;
	bool in_new;
	struct outbox_status st;
};

struct outbox_sender {
	uv_loop_t *loop;
	const struct account_conf *a;
	struct watch *watch;
	char *dir, *sent_dir;
	bool running, again, again_force, freed;
	outbox_done_cb done;
	void *done_ctx;
	struct outbox_report rep;

	struct item *items;
	size_t nitems, cap_items, next;
	bool force;
	struct secret_req *secret_req;
	struct smtp_client *smtp;
	struct outbox_msg *msg;
	struct item *cur; /* on the wire */
	/* The next message starts, and a drain ends, from the loop: not inside
	 * the SMTP client's callback, which still tidies up after it returns. */
	uv_timer_t step;
	struct outbox_refusal refusals[OUTBOX_REFUSALS_KEPT];
	size_t nrefusals;
};

struct outbox_sender *outbox_sender_new(uv_loop_t *loop, const struct account_conf *a,
					struct watch *watch)
{
	struct outbox_sender *s = xcalloc(1, sizeof(*s));
	s->loop = loop;
	s->a = a;
	s->watch = watch;
	s->dir = outbox_dir(a);
	s->sent_dir = outbox_sent_dir(a);
	uv_timer_init(loop, &s->step);
	s->step.data = s;
	return s;
}

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

/* ---- the end of a drain ---- */

static void free_items(struct outbox_sender *s)
{
	for (size_t i = 0; i < s->nitems; i++) {
		free(s->items[i].base);
		free(s->items[i].file);
	}
	free(s->items);
	s->items = NULL;
	s->nitems = s->cap_items = s->next = 0;
}

static void on_end_closed(uv_handle_t *h)
{
	struct outbox_sender *s = h->data;
	free_items(s);
	free(s->dir);
	free(s->sent_dir);
	free(s);
}

static void release(struct outbox_sender *s)
{
	uv_close((uv_handle_t *)&s->step, on_end_closed);
}

static void count_totals(struct outbox_sender *s)
{
	for (size_t i = 0; i < s->nitems; i++) {
		const struct outbox_status *st = &s->items[i].st;
		if (!s->items[i].file)
			continue; /* sent and gone */
		if (st->state == OUTBOX_FAILED) {
			s->rep.failed_total++;
		} else {
			s->rep.queued_total++;
			if (st->next_try && (!s->rep.next_try || st->next_try < s->rep.next_try))
				s->rep.next_try = st->next_try;
		}
	}
}

static void on_end(uv_timer_t *t)
{
	struct outbox_sender *s = t->data;
	smtp_client_free(&s->smtp);
	outbox_msg_free(&s->msg);
	s->cur = NULL;
	count_totals(s);
	s->running = false;
	if (s->freed) {
		release(s);
		return;
	}
	struct outbox_report rep = s->rep;
	outbox_done_cb done = s->done;
	void *ctx = s->done_ctx;
	free_items(s);
	bool again = s->again;
	s->again = false;
	if (again) { /* asked for while this drain ran: one more, same callback */
		outbox_drain(s, s->again_force, done, ctx);
		/* whose report tells what both did */
		s->rep.sent += rep.sent;
		s->rep.failed += rep.failed;
		s->rep.filed += rep.filed;
	} else if (done)
		done(ctx, &rep);
}

static void finish(struct outbox_sender *s)
{
	uv_timer_start(&s->step, on_end, 0, 0);
}

static void fail_drain(struct outbox_sender *s, const struct err *e)
{
	if (s->rep.rc == 0) {
		s->rep.rc = e->code ? e->code : -EIO;
		s->rep.err = *e;
	}
	log_warn("account=%s outbox: %s", s->a->name, e->msg);
}

static void set_status(struct outbox_sender *s, struct item *it)
{
	struct err e;
	if (outbox_status_write(s->dir, it->base, &it->st, &e) < 0)
		fail_drain(s, &e);
}

static int64_t retry_after(unsigned attempts)
{
	int64_t wait = RETRY_FIRST_S;
	for (unsigned i = 1; i < attempts && wait < RETRY_MAX_S; i++)
		wait *= 2;
	return wait < RETRY_MAX_S ? wait : RETRY_MAX_S;
}

/* ---- after the server took a message ---- */

static void remove_message(struct outbox_sender *s, struct item *it)
{
	char *path = xasprintf("%s/%s/%s", s->dir, it->in_new ? "new" : "cur", it->file);
	struct err e;
	if (s->watch)
		watch_expect(s->watch, s->dir, it->file, WATCH_LEAVE);
	if (unlink(path) < 0 && errno != ENOENT) {
		err_set(&e, -errno, ERR_LOCAL, "%s: cannot remove a sent message: %s", path,
			strerror(errno));
		fail_drain(s, &e);
	} else if (outbox_status_remove(s->dir, it->base, &e) < 0) {
		fail_drain(s, &e);
	}
	free(path);
	xfree(&it->file); /* gone */
}

/* Whether the Sent copy named base exists already (a crash after making it). */
static bool sent_copy_exists(struct outbox_sender *s, const char *base)
{
	struct maildir *m;
	struct maildir_scan *scan = NULL;
	struct err e;
	bool found = false;
	if (maildir_open(&m, s->sent_dir, s->a->smtp->sent, &e) < 0)
		return false;
	if (maildir_scan(m, 0, &scan, &e) == 0)
		for (size_t i = 0; i < scan->n && !found; i++)
			found = strcmp(scan->v[i].base, base) == 0;
	maildir_scan_free(&scan);
	maildir_free(&m);
	return found;
}

/* The copy for Sent: the message as sent plus its Bcc, marked \Seen; the
 * status names its file first, so a crash never makes two. */
static int file_sent_copy(struct outbox_sender *s, struct item *it, struct outbox_msg *msg,
			  struct err *e)
{
	struct maildir *m = NULL;
	struct maildir_batch *b = maildir_batch_new();
	struct maildir_delivery *d = NULL;
	int rc = maildir_ensure(s->sent_dir, e);
	if (rc == 0)
		rc = maildir_open(&m, s->sent_dir, s->a->smtp->sent, e);
	if (rc == 0)
		rc = maildir_batch_add(b, m, &d, e);
	if (rc == 0) {
		snprintf(it->st.sent_base, sizeof(it->st.sent_base), "%s", maildir_delivery_base(d));
		it->st.state = OUTBOX_FILING;
		rc = outbox_status_write(s->dir, it->base, &it->st, e);
	}
	outbox_msg_rewind(msg);
	char chunk[65536];
	ssize_t n = 0;
	while (rc == 0 && (n = outbox_msg_read(msg, OUTBOX_FOR_SENT, chunk, sizeof(chunk), e)) > 0)
		rc = maildir_delivery_write(d, chunk, (size_t)n, e);
	if (rc == 0 && n < 0)
		rc = (int)n;
	struct timespec now = { now_s(), 0 };
	if (rc == 0)
		rc = maildir_delivery_finish(d, FLAG_SEEN, NULL, &now, e);
	if (rc == 0)
		rc = maildir_batch_commit(b, e);
	maildir_batch_free(&b);
	maildir_free(&m);
	return rc;
}

/* ---- sending one message after another ---- */

static void send_next(struct outbox_sender *s);

static ssize_t read_for_smtp(void *ctx, char *buf, size_t len, struct err *e)
{
	struct outbox_sender *s = ctx;
	return outbox_msg_read(s->msg, OUTBOX_FOR_SMTP, buf, len, e);
}

static void before_commit(void *ctx)
{
	struct outbox_sender *s = ctx;
	s->cur->st.state = OUTBOX_COMMITTED;
	set_status(s, s->cur);
}

static bool refused(const struct smtp_rcpt_result *rr)
{
	return rr->code && !smtp_positive(rr->code);
}

/* A recipient refused while the message went to the others is only known
 * here: kept (the last few) for mailferryctl outbox. */
static void keep_refusal(struct outbox_sender *s, const struct smtp_rcpt_result *rr)
{
	if (s->nrefusals == OUTBOX_REFUSALS_KEPT)
		memmove(s->refusals, s->refusals + 1, (--s->nrefusals) * sizeof(*s->refusals));
	struct outbox_refusal *k = &s->refusals[s->nrefusals++];
	k->when = now_s();
	snprintf(k->id, sizeof(k->id), "%s", s->cur->base);
	snprintf(k->subject, sizeof(k->subject), "%s", outbox_msg_subject(s->msg));
	snprintf(k->rcpt, sizeof(k->rcpt), "%s", rr->rcpt);
	snprintf(k->reply, sizeof(k->reply), "%d %s", rr->code, rr->text);
}

static void log_rejections(struct outbox_sender *s, const struct smtp_result *r)
{
	for (size_t i = 0; i < r->nrcpts; i++) {
		if (!refused(&r->rcpts[i]))
			continue;
		log_warn("account=%s outbox message=%s event=recipient-refused rcpt=%s: %d %s",
			 s->a->name, s->cur->base, r->rcpts[i].rcpt, r->rcpts[i].code,
			 r->rcpts[i].text);
		if (r->outcome == SMTP_SENT)
			keep_refusal(s, &r->rcpts[i]);
	}
}

/* Why a message did not go, for its status: the failure, and each refused
 * recipient by name (a server's reply need not name the address). */
static void failure_reply(struct outbox_sender *s, const struct smtp_result *r)
{
	struct buf b = { 0 };
	size_t n = 0;
	for (size_t i = 0; i < r->nrcpts; i++)
		n += refused(&r->rcpts[i]);
	if (n && n == r->nrcpts)
		buf_printf(&b, "%s:%d: every recipient refused:", s->a->smtp->server.host,
			   s->a->smtp->server.port);
	else
		buf_printf(&b, "%s%s", r->err.msg, n ? " (recipients refused:" : "");
	const char *sep = " ";
	for (size_t i = 0; i < r->nrcpts; i++) {
		if (!refused(&r->rcpts[i]))
			continue;
		buf_printf(&b, "%s<%s> %d %s", sep, r->rcpts[i].rcpt, r->rcpts[i].code,
			   r->rcpts[i].text);
		sep = "; ";
	}
	if (n && n < r->nrcpts)
		buf_putc(&b, ')');
	snprintf(s->cur->st.reply, sizeof(s->cur->st.reply), "%s", buf_str(&b));
	buf_free(&b);
}

static void on_step(uv_timer_t *t)
{
	send_next(t->data);
}

static void on_sent(void *ctx, const struct smtp_result *r)
{
	struct outbox_sender *s = ctx;
	struct item *it = s->cur;
	struct err e;
	log_rejections(s, r);
	if (r->outcome == SMTP_SENT) {
		log_info("account=%s outbox message=%s event=sent id=%s", s->a->name, it->base,
			 outbox_msg_id(s->msg));
		s->rep.sent++;
		if (s->sent_dir && file_sent_copy(s, it, s->msg, &e) < 0) {
			fail_drain(s, &e); /* the status says filing: the next drain ends it */
		} else {
			s->rep.filed += s->sent_dir != NULL;
			remove_message(s, it);
		}
	} else if (it->st.state == OUTBOX_COMMITTED) {
		it->st.state = OUTBOX_FAILED;
		snprintf(it->st.reply, sizeof(it->st.reply),
			 "the connection ended after the message was handed over: it may have "
			 "been delivered (%s); retry to send it again, or drop it",
			 r->err.msg);
		set_status(s, it);
		s->rep.failed++;
	} else if (r->outcome == SMTP_TRY_LATER) {
		it->st.attempts++;
		it->st.next_try = now_s() + retry_after(it->st.attempts);
		failure_reply(s, r);
		set_status(s, it);
		s->rep.waiting++;
		log_warn("account=%s outbox message=%s event=deferred attempt=%u: %s", s->a->name,
			 it->base, it->st.attempts, r->err.msg);
	} else {
		it->st.state = OUTBOX_FAILED;
		failure_reply(s, r);
		set_status(s, it);
		s->rep.failed++;
		log_error("account=%s outbox message=%s event=refused: %s", s->a->name, it->base,
			  it->st.reply);
	}
	outbox_msg_free(&s->msg);
	s->cur = NULL;
	if (!smtp_client_ready(s->smtp)) {
		/* The connection is gone: the rest waits for the next drain. */
		for (size_t i = s->next; i < s->nitems; i++)
			s->rep.waiting += s->items[i].st.state == OUTBOX_QUEUED;
		s->next = s->nitems;
		if (r->outcome != SMTP_SENT)
			fail_drain(s, &r->err);
	}
	uv_timer_start(&s->step, on_step, 0, 0);
}

static bool due(const struct outbox_sender *s, const struct item *it)
{
	return it->file && it->st.state == OUTBOX_QUEUED &&
	       (s->force || !it->st.next_try || it->st.next_try <= now_s());
}

static void send_next(struct outbox_sender *s)
{
	while (s->next < s->nitems && !due(s, &s->items[s->next]))
		s->next++;
	if (s->next >= s->nitems || s->freed) {
		finish(s);
		return;
	}
	struct item *it = &s->items[s->next++];
	char *path = xasprintf("%s/%s/%s", s->dir, it->in_new ? "new" : "cur", it->file);
	struct err e;
	int rc = outbox_msg_open(path, &s->msg, &e);
	free(path);
	if (rc == -EINVAL) { /* the message itself is wrong: no retry helps */
		it->st.state = OUTBOX_FAILED;
		snprintf(it->st.reply, sizeof(it->st.reply), "cannot be sent: %s", e.msg);
		set_status(s, it);
		s->rep.failed++;
		log_error("account=%s outbox message=%s event=malformed: %s", s->a->name, it->base,
			  e.msg);
		send_next(s);
		return;
	}
	if (rc == -ENOENT) { /* dropped (mailferryctl outbox drop) since the listing */
		xfree(&it->file);
		send_next(s);
		return;
	}
	if (rc < 0) {
		fail_drain(s, &e);
		send_next(s);
		return;
	}
	s->cur = it;
	const struct addr_list *to = outbox_msg_rcpts(s->msg);
	struct smtp_envelope env = {
		.from = outbox_msg_from(s->msg),
		.rcpts = to->v,
		.nrcpts = to->n,
		.size = outbox_msg_size(s->msg, OUTBOX_FOR_SMTP),
		.eight_bit = outbox_msg_eight_bit(s->msg),
		.utf8_addresses = outbox_msg_utf8_addresses(s->msg),
		.read = read_for_smtp,
		.read_ctx = s,
		.before_commit = before_commit,
	};
	smtp_client_send(s->smtp, &env, on_sent, s);
}

/* ---- connecting ---- */

static void on_open(void *ctx, const struct smtp_result *r)
{
	struct outbox_sender *s = ctx;
	if (r->outcome != SMTP_SENT) {
		fail_drain(s, &r->err);
		for (size_t i = 0; i < s->nitems; i++)
			s->rep.waiting += due(s, &s->items[i]);
		finish(s);
		return;
	}
	send_next(s);
}

static void on_secret(void *ctx, const char *secret, const struct err *err)
{
	struct outbox_sender *s = ctx;
	s->secret_req = NULL;
	if (!secret) {
		fail_drain(s, err);
		finish(s);
		return;
	}
	s->smtp = smtp_client_new(s->loop, &s->a->smtp->server, s->a->name);
	smtp_client_open(s->smtp, secret, on_open, s);
}

/* ---- what is in the outbox ---- */

/* A message a crash left between states is settled before anything is
 * sent (outbox/status.h has the table). */
static void recover(struct outbox_sender *s, struct item *it)
{
	struct err e;
	if (it->st.state == OUTBOX_COMMITTED) {
		it->st.state = OUTBOX_FAILED;
		snprintf(it->st.reply, sizeof(it->st.reply),
			 "sending was interrupted after the message was handed over: it may have "
			 "been delivered; retry to send it again, or drop it");
		set_status(s, it);
		s->rep.failed++;
		log_warn("account=%s outbox message=%s event=uncertain: %s", s->a->name, it->base,
			 it->st.reply);
	} else if (it->st.state == OUTBOX_FILING) {
		struct outbox_msg *msg = NULL;
		char *path = xasprintf("%s/%s/%s", s->dir, it->in_new ? "new" : "cur", it->file);
		int rc = 0;
		if (s->sent_dir && !sent_copy_exists(s, it->st.sent_base)) {
			rc = outbox_msg_open(path, &msg, &e);
			if (rc == 0)
				rc = file_sent_copy(s, it, msg, &e);
			outbox_msg_free(&msg);
		}
		free(path);
		if (rc < 0) {
			fail_drain(s, &e);
		} else {
			s->rep.filed += s->sent_dir != NULL;
			remove_message(s, it);
		}
	}
}

static int list_items(struct outbox_sender *s, struct err *e)
{
	struct maildir *m = NULL;
	struct maildir_scan *scan = NULL;
	int rc = maildir_ensure(s->dir, e);
	if (rc == 0)
		rc = maildir_open(&m, s->dir, s->a->smtp->outbox, e);
	if (rc == 0)
		rc = maildir_scan(m, 0, &scan, e);
	for (size_t i = 0; rc == 0 && i < scan->n; i++) {
		const struct maildir_entry *f = &scan->v[i];
		s->items = xgrow(s->items, &s->cap_items, s->nitems + 1, sizeof(*s->items));
		struct item *it = &s->items[s->nitems++];
		*it = (struct item){ .base = xstrdup(f->base), .file = xstrdup(f->file),
				     .in_new = f->in_new };
		rc = outbox_status_read(s->dir, it->base, &it->st, e);
	}
	maildir_scan_free(&scan);
	maildir_free(&m);
	return rc;
}

void outbox_drain(struct outbox_sender *s, bool force, outbox_done_cb done, void *ctx)
{
	if (s->running) {
		s->again = true;
		s->again_force |= force;
		return;
	}
	s->running = true;
	s->force = force;
	s->again_force = false;
	s->done = done;
	s->done_ctx = ctx;
	s->rep = (struct outbox_report){ 0 };
	struct err e;
	if (list_items(s, &e) < 0) {
		fail_drain(s, &e);
		finish(s);
		return;
	}
	bool any = false;
	for (size_t i = 0; i < s->nitems; i++) {
		recover(s, &s->items[i]);
		any |= due(s, &s->items[i]);
	}
	if (!any) {
		finish(s);
		return;
	}
	s->secret_req = secret_fetch(s->loop, &s->a->smtp->server,
				     (unsigned)s->a->smtp->server.timeout * 1000, on_secret, s);
}

const char *outbox_sender_current(const struct outbox_sender *s)
{
	return s->cur ? s->cur->base : NULL;
}

const struct outbox_refusal *outbox_sender_refusals(const struct outbox_sender *s, size_t *n)
{
	*n = s->nrefusals;
	return s->refusals;
}

void outbox_sender_free(struct outbox_sender **sp)
{
	struct outbox_sender *s = *sp;
	if (!s)
		return;
	*sp = NULL;
	s->freed = true;
	if (!s->running) {
		release(s);
		return;
	}
	if (s->secret_req) {
		secret_cancel(s->secret_req);
		s->running = false;
		release(s);
		return;
	}
	/* A message in flight: closing the connection now aborts it before its
	 * final "." or leaves it committed (uncertain) -- both are recorded. */
	smtp_client_free(&s->smtp);
	outbox_msg_free(&s->msg);
	s->running = false;
	release(s);
}
