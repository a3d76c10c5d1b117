#include "check.h"

#include "config/secret.h"
#include "core/buf.h"
#include "core/xalloc.h"
#include "imap/client.h"
#include "imap/list.h"

#include <stdio.h>
#include <string.h>

/* One server of one account being checked; the result is printed at the end
 * so lines come in config order whatever order the servers answer in. */
struct check_item {
	uv_loop_t *loop;
	const struct account_conf *account;
	const struct server_conf *server;
	struct imap_client *imap;
	struct buf line;
	bool ok;
};

static void finish(struct check_item *it, bool ok)
{
	it->ok = ok;
	imap_client_free(&it->imap);
}

static void fail(struct check_item *it, const char *why)
{
	buf_reset(&it->line);
	buf_printf(&it->line, "%s: imap %s", it->account->name, why);
	finish(it, false);
}

static void on_logout(void *ctx, const struct imap_reply *reply)
{
	(void)reply;
	finish(ctx, true);
}

static void on_list(void *ctx, struct imap_folder_list *list, const struct imap_reply *reply)
{
	struct check_item *it = ctx;
	if (reply->status != IMAP_STATUS_OK) {
		fail(it, reply->err.msg);
		return;
	}
	size_t selectable = 0;
	for (size_t i = 0; i < list->n; i++)
		if (!(list->items[i].attrs & FOLDER_NOSELECT))
			selectable++;
	imap_folder_list_free(list);
	buf_printf(&it->line, "%s: imap %s ok: %s, user %s, %zu folders, capabilities: ",
		   it->account->name, imap_client_name(it->imap), imap_client_security(it->imap),
		   it->server->user, selectable);
	imap_caps_format(&it->line, imap_client_caps(it->imap));
	imap_client_logout(it->imap, on_logout, it);
}

static void on_open(void *ctx, const struct imap_reply *reply)
{
	struct check_item *it = ctx;
	if (reply->status != IMAP_STATUS_OK) {
		fail(it, reply->err.msg);
		return;
	}
	imap_list(it->imap, false, on_list, it);
}

static void on_secret(void *ctx, const char *secret, const struct err *err)
{
	struct check_item *it = ctx;
	if (!secret) {
		fail(it, err->msg);
		return;
	}
	/* No untagged handler: --check selects nothing, so nothing is expected. */
	it->imap = imap_client_new(it->loop, it->server, it->account->name, NULL, it);
	imap_client_open(it->imap, secret, on_open, it);
}

int check_run(uv_loop_t *loop, const struct config *cfg)
{
	struct check_item *items = xcalloc(cfg->n_accounts, sizeof(*items));
	for (size_t i = 0; i < cfg->n_accounts; i++) {
		struct check_item *it = &items[i];
		it->loop = loop;
		it->account = &cfg->accounts[i];
		if (!it->account->imap) {
			buf_printf(&it->line, "%s: pop3 %s:%d: not checked (POP3 accounts are not "
					      "supported yet)",
				   it->account->name, it->account->pop3->server.host,
				   it->account->pop3->server.port);
			continue;
		}
		it->server = &it->account->imap->server;
		secret_fetch(loop, it->server, (unsigned)it->server->timeout * 1000, on_secret, it);
	}
	uv_run(loop, UV_RUN_DEFAULT);
	int rc = 0;
	for (size_t i = 0; i < cfg->n_accounts; i++) {
		struct check_item *it = &items[i];
		struct buf shown = { 0 };
		buf_put_visible(&shown, buf_str(&it->line)); /* it quotes servers */
		fprintf(it->ok ? stdout : stderr, "%s\n", buf_str(&shown));
		buf_free(&shown);
		if (!it->ok)
			rc = 1;
		buf_free(&it->line);
	}
	free(items);
	return rc;
}
