#include "sync/pool.h"

#include "config/secret.h"
#include "core/log.h"
#include "core/xalloc.h"

#include <string.h>

struct pool_conn {
	struct sync_pool *pool;
	struct pool_conn *next;
	struct imap_client *c;
	struct pool_user user; /* the borrower; zero while idle */
	bool ready, lent, dead, aborted;
};

struct waiter {
	struct waiter *next;
	unsigned limit;
	struct pool_user user;
	pool_acquire_cb cb;
	void *ctx;
};

struct sync_pool {
	uv_loop_t *loop;
	const struct account_conf *account;
	struct pool_conn *conns;
	unsigned nconns, opening;
	unsigned soft_cap; /* a connection beyond this many failed to open; 0: none did */
	bool aborted;	   /* pool_abort ran: waiters fail, nothing is opened */
	struct err abort_err;
	struct waiter *waiters, **waiters_tail;
	char *secret; /* fetched once per pool, wiped when it closes */
	struct secret_req *secret_req;
	uv_timer_t kick; /* runs dispatch from the loop */
	struct imap_caps caps; /* of the latest connection that logged in */
	bool logged_in, qresync;
	void (*on_login)(void *ctx);
	void *login_ctx;
	bool closing;
	void (*closed)(void *ctx);
	void *closed_ctx;
};

static void dispatch(struct sync_pool *p);
static void maybe_closed(struct sync_pool *p);

static void on_kick(uv_timer_t *t)
{
	dispatch(t->data);
}

static void kick(struct sync_pool *p)
{
	uv_timer_start(&p->kick, on_kick, 0, 0);
}

struct sync_pool *pool_new(uv_loop_t *loop, const struct account_conf *a)
{
	struct sync_pool *p = xcalloc(1, sizeof(*p));
	p->loop = loop;
	p->account = a;
	p->waiters_tail = &p->waiters;
	uv_timer_init(loop, &p->kick);
	p->kick.data = p;
	return p;
}

static void on_untagged(void *ctx, struct imap_response *r)
{
	struct pool_conn *pc = ctx;
	if (pc->lent && pc->user.untagged)
		pc->user.untagged(pc->user.ctx, r);
}

static void on_closed(void *ctx, const struct err *err)
{
	struct pool_conn *pc = ctx;
	pc->dead = true;
	log_info("account=%s event=disconnected %s", pc->pool->account->name, err->msg);
	if (!pc->lent)
		kick(pc->pool); /* drop it */
}

static const struct imap_client_handler conn_handler = { on_untagged, on_closed };

static struct waiter *pop_waiter(struct sync_pool *p)
{
	struct waiter *w = p->waiters;
	if (w) {
		p->waiters = w->next;
		if (!p->waiters)
			p->waiters_tail = &p->waiters;
	}
	return w;
}

static void lend(struct pool_conn *pc, struct waiter *w)
{
	pc->lent = true;
	pc->user = w->user;
	w->cb(w->ctx, pc->c, NULL);
	free(w);
}

static void fail_waiters(struct sync_pool *p, const struct err *err, bool all)
{
	struct waiter *w;
	while ((w = pop_waiter(p))) {
		w->cb(w->ctx, NULL, err);
		free(w);
		if (!all)
			break;
	}
}

static void unlink_conn(struct sync_pool *p, struct pool_conn *pc)
{
	struct pool_conn **pp = &p->conns;
	while (*pp != pc)
		pp = &(*pp)->next;
	*pp = pc->next;
	p->nconns--;
	imap_client_free(&pc->c);
	free(pc);
}

static void on_open(void *ctx, const struct imap_reply *reply)
{
	struct pool_conn *pc = ctx;
	struct sync_pool *p = pc->pool;
	p->opening--;
	if (reply->status != IMAP_STATUS_OK) {
		struct err e = reply->err;
		unlink_conn(p, pc);
		/* Refused credentials will be refused again: tell every waiter, and
		 * ask password_command again next time (the token may have expired).
		 * Otherwise, with connections left, the server may only limit how
		 * many it takes: wait for one of those instead. */
		bool auth = e.cls == ERR_AUTH;
		if (auth)
			xfree_secret(&p->secret);
		if (auth || p->nconns == 0)
			fail_waiters(p, &e, true);
		else
			p->soft_cap = p->nconns;
		kick(p);
		return;
	}
	pc->ready = true;
	p->soft_cap = 0; /* the server takes connections again */
	p->caps = *imap_client_caps(pc->c);
	p->qresync = imap_client_qresync(pc->c);
	p->logged_in = true;
	log_debug("account=%s event=connected server=%s security=\"%s\" connections=%u",
		  p->account->name, imap_client_name(pc->c), imap_client_security(pc->c),
		  p->nconns);
	kick(p);
	if (p->on_login)
		p->on_login(p->login_ctx);
}

static void open_conn(struct sync_pool *p)
{
	struct pool_conn *pc = xcalloc(1, sizeof(*pc));
	pc->pool = p;
	pc->c = imap_client_new(p->loop, &p->account->imap->server, p->account->name,
				&conn_handler, pc);
	pc->next = p->conns;
	p->conns = pc;
	p->nconns++;
	p->opening++;
	imap_client_open(pc->c, p->secret, on_open, pc);
}

static void on_secret(void *ctx, const char *secret, const struct err *err)
{
	struct sync_pool *p = ctx;
	p->secret_req = NULL;
	if (!secret) {
		fail_waiters(p, err, true);
		return;
	}
	p->secret = xstrdup(secret);
	dispatch(p);
}

static unsigned waiter_count(const struct sync_pool *p, unsigned *min_limit)
{
	unsigned n = 0;
	*min_limit = (unsigned)p->account->imap->max_connections;
	for (const struct waiter *w = p->waiters; w; w = w->next, n++)
		if (w->limit && w->limit < *min_limit)
			*min_limit = w->limit;
	return n;
}

static void dispatch(struct sync_pool *p)
{
	for (struct pool_conn *pc = p->conns, *next; pc; pc = next) {
		next = pc->next;
		if (pc->dead && !pc->lent)
			unlink_conn(p, pc);
	}
	if (p->closing)
		return;
	if (p->aborted) {
		fail_waiters(p, &p->abort_err, true);
		return;
	}
	for (struct pool_conn *pc = p->conns; pc && p->waiters; pc = pc->next)
		if (pc->ready && !pc->lent && !pc->dead)
			lend(pc, pop_waiter(p));
	unsigned limit, want = waiter_count(p, &limit);
	if (p->soft_cap && p->soft_cap < limit)
		limit = p->soft_cap;
	if (want <= p->opening || p->nconns >= limit)
		return;
	if (!p->secret) {
		if (!p->secret_req)
			p->secret_req = secret_fetch(p->loop, &p->account->imap->server,
						     (unsigned)p->account->imap->server.timeout * 1000,
						     on_secret, p);
		return;
	}
	while (want > p->opening && p->nconns < limit)
		open_conn(p);
}

void pool_acquire(struct sync_pool *p, unsigned limit, const struct pool_user *user,
		  pool_acquire_cb cb, void *ctx)
{
	struct waiter *w = xcalloc(1, sizeof(*w));
	*w = (struct waiter){ .limit = limit, .user = *user, .cb = cb, .ctx = ctx };
	*p->waiters_tail = w;
	p->waiters_tail = &w->next;
	kick(p);
}

void pool_drop_idle(struct sync_pool *p)
{
	for (struct pool_conn *pc = p->conns; pc; pc = pc->next)
		if (pc->ready && !pc->lent)
			pc->dead = true;
	kick(p); /* dispatch unlinks them */
}

void pool_release(struct sync_pool *p, struct imap_client *c)
{
	for (struct pool_conn *pc = p->conns; pc; pc = pc->next) {
		if (pc->c != c)
			continue;
		pc->lent = false;
		pc->user = (struct pool_user){ 0 };
		if (!imap_client_pending(c) && !pc->dead)
			imap_client_set_sink(c, NULL);
		else
			pc->dead = true; /* a job left commands running: not reusable */
		if (p->closing) {
			unlink_conn(p, pc);
			maybe_closed(p);
			return;
		}
		kick(p);
		return;
	}
	BUG("pool_release of a connection the pool does not hold");
}

unsigned pool_size(const struct sync_pool *p)
{
	return p->nconns;
}

void pool_on_login(struct sync_pool *p, void (*cb)(void *ctx), void *ctx)
{
	p->on_login = cb;
	p->login_ctx = ctx;
}

bool pool_caps(const struct sync_pool *p, struct imap_caps *caps, bool *qresync)
{
	*caps = p->caps;
	*qresync = p->qresync;
	return p->logged_in;
}

/* ---- closing ---- */

static void on_kick_closed(uv_handle_t *h)
{
	struct sync_pool *p = h->data;
	void (*done)(void *) = p->closed;
	void *ctx = p->closed_ctx;
	free(p);
	if (done)
		done(ctx);
}

static void maybe_closed(struct sync_pool *p)
{
	if (p->conns)
		return;
	uv_close((uv_handle_t *)&p->kick, on_kick_closed);
}

static void on_logout(void *ctx, const struct imap_reply *reply)
{
	struct pool_conn *pc = ctx;
	struct sync_pool *p = pc->pool;
	(void)reply;
	pc->dead = true;
	pc->lent = false;
	unlink_conn(p, pc);
	if (p->closing)
		maybe_closed(p);
	else
		kick(p); /* a retired connection leaves room for a new one */
}

void pool_retire(struct sync_pool *p, struct imap_client *c)
{
	for (struct pool_conn *pc = p->conns; pc; pc = pc->next) {
		if (pc->c != c)
			continue;
		imap_client_set_sink(c, NULL);
		/* The borrower is gone once it gives c back: the untagged answers
		 * still to come (LOGOUT's BYE, news) must not reach it. */
		pc->user = (struct pool_user){ 0 };
		if (pc->dead || imap_client_pending(c)) {
			unlink_conn(p, pc);
			if (p->closing)
				maybe_closed(p);
			else
				kick(p);
		} else {
			pc->dead = true; /* still lent: ours until LOGOUT completes */
			imap_client_logout(c, on_logout, pc);
		}
		return;
	}
	BUG("pool_retire of a connection the pool does not hold");
}

void pool_close(struct sync_pool *p, void (*done)(void *ctx), void *ctx)
{
	p->closing = true;
	p->closed = done;
	p->closed_ctx = ctx;
	uv_timer_stop(&p->kick);
	if (p->secret_req)
		secret_cancel(p->secret_req);
	xfree_secret(&p->secret);
	struct err e;
	err_set(&e, -ECANCELED, ERR_TEMP, "account %s: closing", p->account->name);
	fail_waiters(p, &e, true);
	for (struct pool_conn *pc = p->conns, *next; pc; pc = next) {
		next = pc->next;
		if (pc->lent)
			continue; /* dropped when given back */
		if (pc->ready && !pc->dead && !imap_client_pending(pc->c)) {
			pc->lent = true; /* ours until LOGOUT completes */
			imap_client_logout(pc->c, on_logout, pc);
		} else {
			unlink_conn(p, pc);
		}
	}
	maybe_closed(p);
}

void pool_abort(struct sync_pool *p, const struct err *err)
{
	p->aborted = true;
	p->abort_err = *err;
	kick(p);
	/* An abort runs callbacks that may free connections of the list: take
	 * one at a time and look again from the start. */
	for (;;) {
		struct pool_conn *pc = p->conns;
		while (pc && pc->aborted)
			pc = pc->next;
		if (!pc)
			return;
		pc->aborted = pc->dead = true;
		imap_client_abort(pc->c, err);
	}
}
