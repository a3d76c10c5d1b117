/* The session of a POP3 fetch: log in, STAT, UIDL and LIST, RETR what the
 * state does not know (a window of them in flight, pipelined where the
 * server offers PIPELINING), DELE what may go, QUIT. Each step's commands
 * are counted; when the last one is answered the next step starts. A lost
 * connection ends the fetch once every command has completed; what arrived
 * whole is kept. */
#include "pop3/fetch_priv.h"

#include "core/log.h"
#include "core/xalloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* RETR commands in flight at once: enough to keep a pipelined connection
 * busy, few enough that a failure wastes little. */
#define RETR_WINDOW 32
/* Listing lines on the wire: "4294967295 " + 70 id characters + CRLF. */
#define UIDL_LINE_MAX 96
#define LIST_LINE_MAX 48

static void finish_later(struct pop3_fetch *f);
static void quit(struct pop3_fetch *f);

void pop3_fetch_failed(struct pop3_fetch *f, const struct err *err)
{
	if (err->code == -ECANCELED)
		log_debug("account=%s %s", f->a->name, err->msg); /* we are stopping */
	else
		log_error("account=%s %s", f->a->name, err->msg);
	f->res.failures++;
	if (f->res.rc == 0) {
		f->res.rc = err->code < 0 ? err->code : -EIO;
		f->res.err = *err;
	}
}

/* The connection is gone: every command still pending says so too, but it
 * is one failure. */
static void lost(struct pop3_fetch *f, const struct err *err)
{
	if (!f->lost) {
		f->lost = true;
		pop3_fetch_failed(f, err);
	}
}

/* ---- the end ---- */

static void on_timer_closed(uv_handle_t *h)
{
	free(h->data);
}

static void on_finish(uv_timer_t *t)
{
	struct pop3_fetch *f = t->data;
	struct err e;
	if (pop3_store_commit(f, &e) < 0) /* what arrived whole is kept */
		pop3_fetch_failed(f, &e);
	pop3_client_free(&f->c);
	f->res.ms = uv_hrtime() / 1000000 - f->start;
	pop3_store_record(f);
	pop3_store_close(f);
	for (uint32_t i = 0; i < f->count; i++)
		free(f->msgs[i].id);
	free(f->msgs);
	free(f->path);
	f->done(f->ctx, &f->res);
	uv_close((uv_handle_t *)&f->timer, on_timer_closed); /* frees f */
}

/* Ends the fetch from the loop, never from inside a callback of the client
 * (which it frees) or of pop3_fetch_start (whose caller expects no call). */
static void finish_later(struct pop3_fetch *f)
{
	if (f->ending)
		return;
	f->ending = true;
	uv_timer_start(&f->timer, on_finish, 0, 0);
}

/* ---- QUIT and DELE ---- */

static void on_quit(void *ctx, const struct pop3_reply *reply)
{
	struct pop3_fetch *f = ctx;
	unsigned deleted = 0;
	for (uint32_t i = 0; i < f->count; i++)
		deleted += f->msgs[i].deleted;
	if (reply->status == POP3_STATUS_OK) {
		struct err e;
		f->res.deleted = deleted;
		f->res.on_server = f->count - deleted;
		if (pop3_store_forget_deleted(f, &e) < 0)
			pop3_fetch_failed(f, &e);
	} else if (reply->status == POP3_STATUS_ERR) {
		/* RFC 1939 section 6: some deletions may not have been made; the
		 * next session's listing tells. */
		pop3_fetch_failed(f, &reply->err);
	} else if (deleted) {
		lost(f, &reply->err);
	}
	finish_later(f);
}

static void quit(struct pop3_fetch *f)
{
	pop3_client_quit(f->c, on_quit, f);
}

static void on_dele(void *ctx, const struct pop3_reply *reply)
{
	struct fetch_msg *m = ctx;
	struct pop3_fetch *f = m->f;
	f->deletes--;
	if (reply->status == POP3_STATUS_OK)
		m->deleted = true;
	else if (reply->status == POP3_STATUS_ERR)
		pop3_fetch_failed(f, &reply->err);
	else
		lost(f, &reply->err);
	if (f->deletes > 0)
		return;
	if (f->lost)
		finish_later(f);
	else
		quit(f);
}

/* keep = false: everything safe in the Maildir; delete_after_days: what was
 * fetched that long ago. */
static bool due(const struct pop3_fetch *f, const struct fetch_msg *m)
{
	if (!m->known)
		return false;
	if (!f->pc->keep)
		return true;
	int64_t age = (int64_t)f->pc->delete_after_days * 86400;
	return f->pc->delete_after_days > 0 && f->now - m->fetched_at >= age;
}

static void delete_due(struct pop3_fetch *f)
{
	for (uint32_t i = 0; i < f->count; i++) {
		struct fetch_msg *m = &f->msgs[i];
		if (!due(f, m))
			continue;
		f->deletes++;
		pop3_client_send(f->c, NULL, on_dele, m, "DELE %u", m->num);
	}
	if (f->deletes == 0)
		quit(f);
}

/* ---- RETR ---- */

static void fill_window(struct pop3_fetch *f);

static int retr_write(void *ctx, const char *p, size_t n, struct err *e)
{
	struct retr *r = ctx;
	if (!r->d) {
		int rc = maildir_batch_add(r->f->batch, r->f->md, &r->d, e);
		if (rc < 0)
			return rc;
	}
	if (r->sha)
		EVP_DigestUpdate(r->sha, p, n);
	return maildir_delivery_write(r->d, p, n, e);
}

/* Without UIDL a message is named by its content once it is here. */
static char *content_id(struct retr *r)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned len = 0;
	EVP_DigestFinal_ex(r->sha, md, &len);
	char *id = xmalloc(FETCH_ID_MAX + 1);
	int off = snprintf(id, FETCH_ID_MAX + 1, "sha256:");
	for (unsigned i = 0; i < len && off + 2 <= FETCH_ID_MAX; i++)
		off += snprintf(id + off, 3, "%02x", md[i]);
	return id;
}

/* A whole message arrived: into the batch, or dropped when a server
 * without UIDL showed it again after an interrupted session. */
static int downloaded(struct pop3_fetch *f, struct retr *r, struct err *e)
{
	struct fetch_msg *m = r->m;
	int rc = r->d ? 0 : maildir_batch_add(f->batch, f->md, &r->d, e); /* empty */
	if (rc < 0)
		return rc;
	if (r->sha) {
		m->id = content_id(r);
		if (pop3_store_has(f, m->id)) {
			maildir_delivery_abort(r->d);
			m->known = true;
			m->fetched_at = f->now;
			log_info("account=%s event=refetched message=%u: kept once (%s)",
				 f->a->name, m->num, m->id);
			return 0;
		}
	}
	rc = maildir_delivery_finish(r->d, 0, NULL, NULL, e);
	return rc == 0 ? pop3_store_add(f, r->d, m, e) : rc;
}

static void on_retr(void *ctx, const struct pop3_reply *reply)
{
	struct retr *r = ctx;
	struct pop3_fetch *f = r->f;
	struct err e;
	f->inflight--;
	if (reply->status == POP3_STATUS_OK) {
		if (downloaded(f, r, &e) < 0) {
			pop3_fetch_failed(f, &e);
			f->stop = true; /* the disk or the state refuses: no use going on */
		}
	} else {
		if (r->d)
			maildir_delivery_abort(r->d);
		if (reply->status == POP3_STATUS_ERR)
			pop3_fetch_failed(f, &reply->err); /* it stays on the server: next time */
		else
			lost(f, &reply->err);
	}
	if (r->sha)
		EVP_MD_CTX_free(r->sha);
	free(r);
	fill_window(f);
}

static void retrieve(struct pop3_fetch *f, struct fetch_msg *m)
{
	struct retr *r = xcalloc(1, sizeof(*r));
	r->f = f;
	r->m = m;
	if (!f->uidl) {
		r->sha = EVP_MD_CTX_new();
		if (!r->sha || !EVP_DigestInit_ex(r->sha, EVP_sha256(), NULL))
			BUG("SHA-256 is not available");
	}
	/* Dot-stuffing and line ends may grow a message on the wire up to twice
	 * the size LIST gave (every line a lone "." with LF counted): more is a
	 * server that does not stop. */
	struct pop3_sink sink = { retr_write, r };
	struct pop3_cmd_opts o = { .multi = true,
				   .max_bytes = 2 * m->size + 64 * 1024,
				   .sink = &sink };
	f->inflight++;
	pop3_client_send(f->c, &o, on_retr, r, "RETR %u", m->num);
}

static void fill_window(struct pop3_fetch *f)
{
	while (!f->lost && !f->stop && f->inflight < RETR_WINDOW && f->next < f->count) {
		struct fetch_msg *m = &f->msgs[f->next++];
		if (!m->known)
			retrieve(f, m);
	}
	if (f->inflight > 0)
		return;
	struct err e;
	if (pop3_store_commit(f, &e) < 0)
		pop3_fetch_failed(f, &e);
	if (f->lost)
		finish_later(f);
	else
		delete_due(f);
}

/* ---- listings ---- */

static struct fetch_msg *listed(struct pop3_fetch *f, uint32_t num, struct err *e)
{
	if (num == 0 || num > f->count) {
		err_set(e, -EPROTO, ERR_PERM, "message %u is not among the %u of STAT", num,
			f->count);
		return NULL;
	}
	return &f->msgs[num - 1];
}

static int on_uidl_line(void *ctx, const char *line, size_t len, struct err *e)
{
	struct pop3_fetch *f = ctx;
	uint32_t num;
	const char *id;
	size_t n;
	(void)len;
	if (pop3_parse_uidl(line, &num, &id, &n) < 0)
		return err_set(e, -EPROTO, ERR_PERM, "not a UIDL line: \"%.100s\"", line);
	struct fetch_msg *m = listed(f, num, e);
	if (!m)
		return -EPROTO;
	if (m->named)
		return err_set(e, -EPROTO, ERR_PERM, "message %u listed twice", num);
	m->named = true;
	m->id = xasprintf("%.*s", (int)n, id);
	return 0;
}

static int on_list_line(void *ctx, const char *line, size_t len, struct err *e)
{
	struct pop3_fetch *f = ctx;
	uint32_t num;
	uint64_t size;
	(void)len;
	if (pop3_parse_list(line, &num, &size) < 0)
		return err_set(e, -EPROTO, ERR_PERM, "not a LIST line: \"%.100s\"", line);
	struct fetch_msg *m = listed(f, num, e);
	if (!m)
		return -EPROTO;
	if (m->sized)
		return err_set(e, -EPROTO, ERR_PERM, "message %u listed twice", num);
	m->sized = true;
	m->size = size;
	return 0;
}

/* Every message named once (with UIDL) and sized; no unique-id twice. */
static int check_listing(struct pop3_fetch *f, struct err *e)
{
	const char *name = pop3_client_name(f->c);
	for (uint32_t i = 0; i < f->count; i++)
		if (!f->msgs[i].sized || (f->uidl && !f->msgs[i].named))
			return err_set(e, -EPROTO, ERR_PERM, "%s: %s left out message %u", name,
				       f->msgs[i].sized ? "UIDL" : "LIST", i + 1);
	size_t n;
	const char **ids = pop3_store_sorted_ids(f, false, &n);
	int rc = 0;
	for (size_t i = 1; i < n && rc == 0; i++)
		if (strcmp(ids[i - 1], ids[i]) == 0)
			rc = err_set(e, -EPROTO, ERR_PERM,
				     "%s: two messages have the unique-id %s: the server's UIDL "
				     "cannot tell them apart, so nothing is fetched",
				     name, ids[i]);
	free(ids);
	return rc;
}

/* Which messages the state knows, and which rows are of no use any more. */
static int match_rows(struct pop3_fetch *f, struct err *e)
{
	if (f->uidl) {
		int rc = pop3_store_prune(f, e);
		if (rc < 0)
			return rc;
	}
	for (uint32_t i = 0; i < f->count; i++) {
		struct fetch_msg *m = &f->msgs[i];
		const struct state_pop3 *r = m->id ? state_pop3_find(&f->rows, m->id) : NULL;
		if (r && r->state == STATE_SYNCED) {
			m->known = true;
			m->fetched_at = r->fetched;
		}
	}
	return 0;
}

static void after_listing(struct pop3_fetch *f)
{
	struct err e;
	if (f->lost) {
		finish_later(f);
		return;
	}
	int rc = check_listing(f, &e);
	if (rc == 0 && !f->uidl && f->pc->keep)
		rc = err_set(&e, -EOPNOTSUPP, ERR_CONFIG,
			     "%s: the server has no UIDL, so with keep = true mailferry could not "
			     "tell fetched messages from new ones; set keep = false (docs/POP3.md)",
			     pop3_client_name(f->c));
	if (rc == 0)
		rc = match_rows(f, &e);
	if (rc < 0) {
		pop3_fetch_failed(f, &e);
		quit(f);
		return;
	}
	fill_window(f);
}

static void on_listing(void *ctx, const struct pop3_reply *reply)
{
	struct pop3_fetch *f = ctx;
	if (reply->status == POP3_STATUS_NONE) {
		lost(f, &reply->err);
	} else if (reply->status == POP3_STATUS_ERR) {
		pop3_fetch_failed(f, &reply->err);
		f->stop = true;
	}
	if (--f->inflight == 0) {
		if (f->stop && !f->lost)
			quit(f);
		else
			after_listing(f);
	}
}

static void on_uidl(void *ctx, const struct pop3_reply *reply)
{
	struct pop3_fetch *f = ctx;
	f->uidl = reply->status == POP3_STATUS_OK;
	if (reply->status == POP3_STATUS_ERR) {
		/* No UIDL (RFC 1939 calls it optional): the messages are named by
		 * their content once downloaded; the -ERR is no failure. */
		struct pop3_reply fine = *reply;
		fine.status = POP3_STATUS_OK;
		for (uint32_t i = 0; i < f->count; i++)
			xfree(&f->msgs[i].id);
		on_listing(f, &fine);
		return;
	}
	on_listing(f, reply);
}

static void on_stat(void *ctx, const struct pop3_reply *reply)
{
	struct pop3_fetch *f = ctx;
	uint64_t total;
	if (reply->status != POP3_STATUS_OK) {
		pop3_fetch_failed(f, &reply->err);
		if (reply->status == POP3_STATUS_ERR)
			quit(f);
		else
			finish_later(f);
		return;
	}
	if (pop3_parse_stat(reply->text, &f->count, &total) < 0) {
		struct err e;
		err_set(&e, -EPROTO, ERR_PERM, "%s: STAT: not a count and a size: \"%.100s\"",
			pop3_client_name(f->c), reply->text);
		lost(f, &e);
		finish_later(f);
		return;
	}
	f->res.on_server = f->count;
	f->msgs = xcalloc((size_t)f->count + 1, sizeof(*f->msgs));
	for (uint32_t i = 0; i < f->count; i++)
		f->msgs[i] = (struct fetch_msg){ .num = i + 1, .f = f };
	f->inflight = 2;
	struct pop3_cmd_opts uidl = { .multi = true,
				      .max_bytes = (uint64_t)f->count * UIDL_LINE_MAX + 1024,
				      .line = on_uidl_line };
	struct pop3_cmd_opts list = { .multi = true,
				      .max_bytes = (uint64_t)f->count * LIST_LINE_MAX + 1024,
				      .line = on_list_line };
	pop3_client_send(f->c, &uidl, on_uidl, f, "UIDL");
	pop3_client_send(f->c, &list, on_listing, f, "LIST");
}

/* ---- the start ---- */

static void on_open(void *ctx, const struct pop3_reply *reply)
{
	struct pop3_fetch *f = ctx;
	if (reply->status != POP3_STATUS_OK) {
		pop3_fetch_failed(f, &reply->err);
		finish_later(f);
		return;
	}
	log_debug("account=%s server=%s event=logged-in method=\"%s\" security=\"%s\"", f->a->name,
		  pop3_client_name(f->c), pop3_client_login_method(f->c),
		  pop3_client_security(f->c));
	pop3_client_send(f->c, NULL, on_stat, f, "STAT");
}

static void on_secret(void *ctx, const char *secret, const struct err *err)
{
	struct pop3_fetch *f = ctx;
	f->secret = NULL;
	if (!secret) {
		pop3_fetch_failed(f, err);
		finish_later(f);
		return;
	}
	f->c = pop3_client_new(f->loop, &f->pc->server, f->a->name);
	pop3_client_open(f->c, secret, on_open, f);
}

struct pop3_fetch *pop3_fetch_start(uv_loop_t *loop, struct state *st, const struct account_conf *a,
				    pop3_fetch_cb done, void *ctx)
{
	BUG_ON(!a->pop3);
	struct pop3_fetch *f = xcalloc(1, sizeof(*f));
	f->loop = loop;
	f->st = st;
	f->a = a;
	f->pc = a->pop3;
	f->done = done;
	f->ctx = ctx;
	f->now = (int64_t)time(NULL);
	f->start = uv_hrtime() / 1000000;
	uv_timer_init(loop, &f->timer);
	f->timer.data = f;
	struct err e;
	if (pop3_store_open(f, &e) < 0) {
		pop3_fetch_failed(f, &e);
		finish_later(f);
		return f;
	}
	const struct server_conf *sc = &f->pc->server;
	f->secret = secret_fetch(loop, sc, (unsigned)sc->timeout * 1000, on_secret, f);
	return f;
}

void pop3_fetch_abort(struct pop3_fetch *f, const struct err *err)
{
	if (f->ending)
		return;
	if (f->secret) {
		secret_cancel(f->secret);
		f->secret = NULL;
		pop3_fetch_failed(f, err);
		finish_later(f);
	} else if (f->c) {
		pop3_client_abort(f->c, err);
	}
}
