#include "sync/push.h"

#include "core/log.h"
#include "core/xalloc.h"
#include "imap/utf7.h"

#include <string.h>
#include <strings.h>

struct push_conn {
	struct push *p; /* NULL once push_free let go of it */
	struct sync_pool *pool;
	struct imap_client *c;
	char *folder; /* the IDLE folder; NULL for NOTIFY */
	uv_timer_t renew;
	bool idling, closing;
	bool notify_set; /* its session carries NOTIFY SET: never lent again */
};

struct push {
	uv_loop_t *loop;
	struct sync_pool *pool;
	const struct account_conf *a;
	push_event_cb event;
	push_down_cb down;
	void *ctx;
	const char *mode;
	struct push_conn **conns;
	size_t n;
	bool down_reported;
};

static void start_idle(struct push_conn *pc);

static void report_down(struct push *p, const struct err *err)
{
	if (!p || p->down_reported)
		return;
	p->down_reported = true;
	p->down(p->ctx, err);
}

static void on_timer_closed(uv_handle_t *h)
{
	struct push_conn *pc = h->data;
	free(pc->folder);
	free(pc);
}

/* The connection goes back to the pool (or, with NOTIFY set on it, is
 * logged out); pc goes away. */
static void conn_done(struct push_conn *pc)
{
	struct push *p = pc->p;
	for (size_t i = 0; p && i < p->n; i++)
		if (p->conns[i] == pc)
			p->conns[i] = p->conns[--p->n];
	if (pc->c && pc->notify_set)
		pool_retire(pc->pool, pc->c);
	else if (pc->c)
		pool_release(pc->pool, pc->c);
	pc->c = NULL;
	uv_timer_stop(&pc->renew);
	uv_close((uv_handle_t *)&pc->renew, on_timer_closed);
}

/* ---- server news ---- */

/* The folder a STATUS names. Dovecot 2.3 writes it in UTF-8 in its NOTIFY
 * news (`* STATUS {5}` then "Café"; "Fish & Chips" as such) though its LIST
 * gives modified UTF-7, so a name that is not modified UTF-7 is taken as
 * UTF-8 rather than losing the news of every such folder. */
static char *decode_name(const struct imap_value *v)
{
	size_t len;
	const char *wire = imap_value_astring(v, &len);
	if (!wire)
		return NULL;
	if (strcasecmp(wire, "INBOX") == 0)
		return xstrdup("INBOX");
	struct buf b = { 0 };
	if (imap_utf7_decode(&b, wire, len, NULL) == 0)
		return buf_steal(&b);
	buf_free(&b);
	return imap_utf8_valid(wire, len) ? xstrndup(wire, len) : NULL;
}

static void on_untagged(void *ctx, struct imap_response *r)
{
	struct push_conn *pc = ctx;
	struct push *p = pc->p;
	if (!p || !r->name)
		return;
	if (pc->folder) {
		/* IDLE: anything about the selected folder's messages. */
		if (strcmp(r->name, "EXISTS") == 0 || strcmp(r->name, "EXPUNGE") == 0 ||
		    strcmp(r->name, "FETCH") == 0 || strcmp(r->name, "VANISHED") == 0)
			p->event(p->ctx, pc->folder);
		return;
	}
	if (strcmp(r->name, "STATUS") == 0 && r->nargs > 0) {
		/* News of a folder we cannot name: every folder is looked at. */
		char *name = decode_name(&r->args[0]);
		p->event(p->ctx, name);
		free(name);
	} else if (strcmp(r->name, "LIST") == 0) {
		p->event(p->ctx, NULL);
	}
}

/* ---- IDLE, renewed ---- */

static void on_renew(uv_timer_t *t)
{
	struct push_conn *pc = t->data;
	imap_client_idle_done(pc->c);
}

/* IDLE is left and entered again every `keepalive` seconds: RFC 2177 asks
 * for less than 29 minutes, NAT state stays alive, and a connection that
 * died without a word is found, since DONE must be answered within the
 * timeout. */
static char *on_idling(void *ctx, const struct imap_response *r)
{
	struct push_conn *pc = ctx;
	(void)r;
	pc->idling = true;
	if (pc->closing)
		imap_client_idle_done(pc->c);
	else
		uv_timer_start(&pc->renew, on_renew, (uint64_t)pc->p->a->imap->keepalive * 1000, 0);
	return NULL;
}

static void on_idle_done(void *ctx, const struct imap_reply *reply)
{
	struct push_conn *pc = ctx;
	pc->idling = false;
	uv_timer_stop(&pc->renew);
	if (pc->closing) {
		conn_done(pc);
		return;
	}
	if (reply->status != IMAP_STATUS_OK) {
		report_down(pc->p, &reply->err);
		return;
	}
	start_idle(pc);
}

static void start_idle(struct push_conn *pc)
{
	struct imap_cmd *cmd = imap_cmd_new(pc->c, "IDLE");
	imap_cmd_continue(cmd, on_idling);
	imap_cmd_send(cmd, on_idle_done, pc);
}

/* ---- setting up ---- */

static void on_setup(void *ctx, const struct imap_reply *reply)
{
	struct push_conn *pc = ctx;
	if (pc->closing) {
		conn_done(pc);
		return;
	}
	if (reply->status != IMAP_STATUS_OK) {
		report_down(pc->p, &reply->err);
		return;
	}
	log_info("account=%s event=push mode=%s%s%s", pc->p->a->name, pc->p->mode,
		 pc->folder ? " folder=" : "", pc->folder ? pc->folder : "");
	start_idle(pc);
}

static void ignore_reply(void *ctx, const struct imap_reply *reply)
{
	(void)ctx;
	(void)reply; /* NO: nothing was selected, which is what we wanted */
}

/* RFC 5465: news of every personal folder, as STATUS responses (and LIST
 * for folders created, deleted or renamed). The news of a selected folder
 * would come as EXISTS and FETCH instead, so the connection (a sync may have
 * used it) leaves its folder first. */
static void setup_notify(struct push_conn *pc)
{
	if (imap_client_has(pc->c, CAP_UNSELECT))
		imap_cmd_send(imap_cmd_new(pc->c, "UNSELECT"), ignore_reply, pc);
	struct imap_cmd *cmd = imap_cmd_new(
		pc->c, "NOTIFY SET (personal (MessageNew MessageExpunge FlagChange MailboxName))");
	pc->notify_set = true;
	imap_cmd_send(cmd, on_setup, pc);
}

/* EXAMINE: the folder is only watched here, so it is opened read-only and
 * its \Recent flags stay for the reader. */
static void setup_idle(struct push_conn *pc)
{
	struct imap_cmd *cmd = imap_cmd_new(pc->c, "EXAMINE");
	struct err err;
	if (imap_cmd_mailbox(cmd, pc->folder, &err) < 0) {
		imap_cmd_free(&cmd);
		report_down(pc->p, &err);
		return;
	}
	imap_cmd_send(cmd, on_setup, pc);
}

static void acquire(struct push *p, const char *folder);

static void on_conn(void *ctx, struct imap_client *c, const struct err *err)
{
	struct push_conn *pc = ctx;
	struct push *p = pc->p;
	if (!c) {
		if (p)
			report_down(p, err);
		conn_done(pc);
		return;
	}
	pc->c = c;
	if (!p) {
		conn_done(pc);
		return;
	}
	if (!p->mode) { /* the first connection tells what the server offers */
		p->mode = imap_client_has(c, CAP_NOTIFY) ? "NOTIFY"
			  : imap_client_has(c, CAP_IDLE) ? "IDLE"
							  : "none";
		if (strcmp(p->mode, "IDLE") == 0) {
			char *const *f = p->a->imap->idle;
			pc->folder = xstrdup(f[0]);
			for (size_t i = 1; f[i]; i++)
				acquire(p, f[i]);
		}
	}
	if (strcmp(p->mode, "NOTIFY") == 0)
		setup_notify(pc);
	else if (pc->folder)
		setup_idle(pc);
	else
		conn_done(pc); /* no push: polling only */
}

static void acquire(struct push *p, const char *folder)
{
	struct push_conn *pc = xcalloc(1, sizeof(*pc));
	pc->p = p;
	pc->pool = p->pool;
	pc->folder = folder ? xstrdup(folder) : NULL;
	uv_timer_init(p->loop, &pc->renew);
	pc->renew.data = pc;
	p->conns = xrealloc(p->conns, (p->n + 1) * sizeof(*p->conns));
	p->conns[p->n++] = pc;
	/* One connection always stays for syncing. */
	unsigned max = (unsigned)p->a->imap->max_connections;
	struct pool_user user = { on_untagged, pc };
	pool_acquire(p->pool, max > 1 ? max - 1 : 1, &user, on_conn, pc);
}

struct push *push_start(uv_loop_t *loop, struct sync_pool *pool, const struct account_conf *a,
			push_event_cb event, push_down_cb down, void *ctx)
{
	struct push *p = xcalloc(1, sizeof(*p));
	*p = (struct push){ .loop = loop, .pool = pool, .a = a, .event = event, .down = down,
			    .ctx = ctx };
	if (a->imap->max_connections < 2) {
		p->mode = "none";
		log_warn("account=%s max_connections = 1 leaves no connection for push: polling "
			 "every %d s",
			 a->name, a->imap->poll_interval);
		return p;
	}
	acquire(p, NULL);
	return p;
}

void push_free(struct push **pp)
{
	struct push *p = *pp;
	if (!p)
		return;
	*pp = NULL;
	for (size_t i = 0; i < p->n; i++) {
		struct push_conn *pc = p->conns[i];
		pc->p = NULL;
		pc->closing = true;
		if (pc->idling)
			imap_client_idle_done(pc->c); /* on_idle_done gives it back */
		else if (pc->c && !imap_client_pending(pc->c))
			conn_done(pc);
		/* otherwise a command is running: its callback gives it back */
	}
	free(p->conns);
	free(p);
}

const char *push_mode(const struct push *p)
{
	return p->mode ? p->mode : "starting";
}
