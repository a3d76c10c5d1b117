#include "check.h"

#include "config/secret.h"
#include "core/buf.h"
#include "core/xalloc.h"
#include "imap/client.h"
#include "imap/list.h"
#include "pop3/client.h"

#include <stdio.h>
#include <string.h>

/* One server of one account being checked; the result is printed at the end
 * so lines come in config order whatever order the servers answer in. */
struct check_item {
	uv_loop_t *loop;
	const struct account_conf *account;
	const struct server_conf *server;
	struct imap_client *imap;
	struct pop3_client *pop3;
	struct buf line;
	bool ok;
};

static void finish(struct check_item *it, bool ok)
{
	it->ok = ok;
	imap_client_free(&it->imap);
	pop3_client_free(&it->pop3);
}

static void fail(struct check_item *it, const char *why)
{
	buf_reset(&it->line);
	buf_printf(&it->line, "%s: %s %s", it->account->name, it->account->imap ? "imap" : "pop3",
		   why);
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

/* ---- POP3: log in, STAT, QUIT ---- */

static void on_pop3_quit(void *ctx, const struct pop3_reply *reply)
{
	(void)reply;
	finish(ctx, true);
}

static void on_pop3_stat(void *ctx, const struct pop3_reply *reply)
{
	struct check_item *it = ctx;
	uint32_t count;
	uint64_t size;
	if (reply->status != POP3_STATUS_OK) {
		fail(it, reply->err.msg);
		return;
	}
	buf_printf(&it->line, "%s: pop3 %s ok: %s, user %s, login %s, ", it->account->name,
		   pop3_client_name(it->pop3), pop3_client_security(it->pop3), it->server->user,
		   pop3_client_login_method(it->pop3));
	if (pop3_parse_stat(reply->text, &count, &size) == 0)
		buf_printf(&it->line, "%u messages (%llu bytes), ", count,
			   (unsigned long long)size);
	buf_puts(&it->line, "capabilities: ");
	pop3_client_caps_format(it->pop3, &it->line);
	pop3_client_quit(it->pop3, on_pop3_quit, it);
}

static void on_pop3_open(void *ctx, const struct pop3_reply *reply)
{
	struct check_item *it = ctx;
	if (reply->status != POP3_STATUS_OK) {
		fail(it, reply->err.msg);
		return;
	}
	pop3_client_send(it->pop3, NULL, on_pop3_stat, it, "STAT");
}

static void on_secret(void *ctx, const char *secret, const struct err *err)
{
	struct check_item *it = ctx;
	if (!secret) {
		fail(it, err->msg);
		return;
	}
	if (it->account->pop3) {
		it->pop3 = pop3_client_new(it->loop, it->server, it->account->name);
		pop3_client_open(it->pop3, secret, on_pop3_open, it);
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
		it->server = it->account->imap ? &it->account->imap->server
					       : &it->account->pop3->server;
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
