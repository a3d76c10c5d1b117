#include "once.h"

#include "core/buf.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "pop3/fetch.h"
#include "state/state.h"
#include "sync/pass.h"

#include <stdio.h>

struct once_account {
	const struct account_conf *a;
	struct state *st;
	struct sync_pool *pool;
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
	if (r->rc < 0)
		buf_printf(&oa->line, "; %u failed, first: %s", r->failures, r->err.msg);
	state_close(&oa->st);
}

int once_run(uv_loop_t *loop, const struct config *cfg, bool allow_mass_delete)
{
	struct once_account *accounts = xcalloc(cfg->n_accounts, sizeof(*accounts));
	struct pass_opts opts = { .allow_mass_delete = allow_mass_delete };
	for (size_t i = 0; i < cfg->n_accounts; i++) {
		struct once_account *oa = &accounts[i];
		struct err err;
		oa->a = &cfg->accounts[i];
		if (state_open(cfg->general.state_dir, oa->a->name, &oa->st, &err) < 0) {
			buf_printf(&oa->line, "%s: %s", oa->a->name, err.msg);
			continue;
		}
		if (oa->a->pop3) {
			pop3_fetch_start(loop, oa->st, oa->a, on_fetch, oa);
			continue;
		}
		oa->pool = pool_new(loop, oa->a);
		sync_pass(loop, oa->pool, oa->st, oa->a, &opts, on_pass, oa);
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
	}
	free(accounts);
	return rc;
}
