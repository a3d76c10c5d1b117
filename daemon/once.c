#include "once.h"

#include "core/buf.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "outbox/sender.h"
#include "pop3/fetch.h"
#include "state/state.h"
#include "sync/pass.h"

#include <stdio.h>

struct once_account {
	uv_loop_t *loop;
	const struct account_conf *a;
	const struct pass_opts *opts;
	struct state *st;
	struct sync_pool *pool;
	struct outbox_sender *sender;
	struct buf outbox; /* the outbox's part of the summary */
	bool outbox_ok;
	struct buf line;
	bool ok;
};

static void on_pool_closed(void *ctx)
{
	(void)ctx;
}

static void on_pass(void *ctx, const struct pass_result *r)
{
	struct once_account *oa = ctx;
	const struct folder_stats *s = &r->sum;
	oa->ok = r->rc == 0;
	buf_printf(&oa->line,
		   "%s: %u folders, %u down, %u up, %u flags, %u moves, %u deletes, %u messages "
		   "(%u unread), %.2f s",
		   oa->a->name, r->folders + r->skipped, s->down, s->up,
		   s->flags_local + s->flags_remote, r->moves, s->del_local + s->del_remote,
		   s->messages, s->unread, (double)r->ms / 1000.0);
	buf_puts(&oa->line, buf_str(&oa->outbox));
	oa->ok &= oa->outbox_ok;
	if (r->rc < 0)
		buf_printf(&oa->line, "; %u failed, first: %s", r->failures, r->err.msg);
	pool_close(oa->pool, on_pool_closed, oa);
	oa->pool = NULL;
	state_close(&oa->st);
}

static void on_fetch(void *ctx, const struct pop3_fetch_result *r)
{
	struct once_account *oa = ctx;
	oa->ok = r->rc == 0;
	buf_printf(&oa->line, "%s: pop3, %u fetched, %u deleted from the server, %u left there, %.2f s",
		   oa->a->name, r->fetched, r->deleted, r->on_server, (double)r->ms / 1000.0);
	buf_puts(&oa->line, buf_str(&oa->outbox));
	oa->ok &= oa->outbox_ok;
	if (r->rc < 0)
		buf_printf(&oa->line, "; %u failed, first: %s", r->failures, r->err.msg);
	state_close(&oa->st);
}

/* The mail of the account's server: an IMAP pass or a POP3 fetch. */
static void sync_account(struct once_account *oa)
{
	if (oa->a->pop3)
		pop3_fetch_start(oa->loop, oa->st, oa->a, on_fetch, oa);
	else {
		oa->pool = pool_new(oa->loop, oa->a);
		sync_pass(oa->loop, oa->pool, oa->st, oa->a, oa->opts, on_pass, oa);
	}
}

/* The outbox goes first, so the Sent copies it makes are synced up now. */
static void on_drained(void *ctx, const struct outbox_report *r)
{
	struct once_account *oa = ctx;
	oa->outbox_ok = r->rc == 0 && r->failed == 0;
	buf_printf(&oa->outbox, "; outbox: %u sent, %u failed, %u waiting", r->sent,
		   r->failed_total, r->queued_total);
	if (r->rc < 0)
		buf_printf(&oa->outbox, " (%s)", r->err.msg);
	outbox_sender_free(&oa->sender);
	sync_account(oa);
}

int once_run(uv_loop_t *loop, const struct config *cfg, bool allow_mass_delete)
{
	struct once_account *accounts = xcalloc(cfg->n_accounts, sizeof(*accounts));
	struct pass_opts opts = { .allow_mass_delete = allow_mass_delete };
	for (size_t i = 0; i < cfg->n_accounts; i++) {
		struct once_account *oa = &accounts[i];
		struct err err;
		oa->a = &cfg->accounts[i];
		oa->loop = loop;
		oa->opts = &opts;
		oa->outbox_ok = true;
		if (state_open(cfg->general.state_dir, oa->a->name, &oa->st, &err) < 0) {
			buf_printf(&oa->line, "%s: %s", oa->a->name, err.msg);
			continue;
		}
		if (oa->a->smtp) {
			oa->sender = outbox_sender_new(loop, oa->a, NULL);
			outbox_drain(oa->sender, false, on_drained, oa);
		} else {
			sync_account(oa);
		}
	}
	uv_run(loop, UV_RUN_DEFAULT);
	int rc = 0;
	for (size_t i = 0; i < cfg->n_accounts; i++) {
		struct once_account *oa = &accounts[i];
		struct buf shown = { 0 };
		buf_put_visible(&shown, buf_str(&oa->line)); /* it quotes servers */
		fprintf(oa->ok ? stdout : stderr, "%s\n", buf_str(&shown));
		buf_free(&shown);
		rc |= !oa->ok;
		buf_free(&oa->line);
		buf_free(&oa->outbox);
	}
	free(accounts);
	return rc;
}
