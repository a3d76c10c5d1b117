#include "control.h"

#include "outbox_queue.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "ctl/server.h"
#include "state/state.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

struct control {
	struct ctl_server *server;
	const struct control_ops *ops;
	void *ctx;
};

/* One command being answered; sync --wait answers when its last pass ends. */
struct answer {
	struct ctl_conn *conn;
	struct buf text;
	int status;
	unsigned waiting;
};

static void finish(struct answer *an)
{
	ctl_conn_reply(an->conn, an->status, buf_str(&an->text));
	buf_free(&an->text);
	free(an);
}

static void when(struct buf *b, int64_t t)
{
	if (!t) {
		buf_puts(b, "never");
		return;
	}
	char s[32];
	struct tm tm;
	time_t tt = (time_t)t;
	localtime_r(&tt, &tm);
	strftime(s, sizeof(s), "%Y-%m-%d %H:%M:%S", &tm);
	buf_puts(b, s);
}

/* The accounts a command names: one by name, or all. */
static size_t select_accounts(struct control *ctl, const char *name, struct account **out,
			      size_t cap)
{
	size_t n, k = 0;
	struct account *const *all = ctl->ops->accounts(ctl->ctx, &n);
	for (size_t i = 0; i < n && k < cap; i++)
		if (!name || strcmp(account_name(all[i]), name) == 0)
			out[k++] = all[i];
	return k;
}

/* ---- status ---- */

/* An account's outbox figures; all 0 without an smtp block. */
static struct outbox_counts outbox_counts_of(struct account *a)
{
	struct outbox_counts c = { 0 };
	struct err err;
	struct outbox_queue *q = account_outbox(a);
	if (q && outbox_queue_counts(q, &c, &err) < 0)
		log_warn("account=%s outbox: %s", account_name(a), err.msg);
	return c;
}

static void status_json(struct buf *b, struct account *const *v, size_t n)
{
	buf_puts(b, "{\"accounts\": [");
	for (size_t i = 0; i < n; i++) {
		struct account_status s;
		account_status(v[i], &s);
		buf_puts(b, i ? ", {\"name\": " : "{\"name\": ");
		buf_json_string(b, s.name);
		buf_puts(b, ", \"protocol\": ");
		buf_json_string(b, s.protocol);
		buf_puts(b, ", \"state\": ");
		buf_json_string(b, s.state);
		buf_puts(b, ", \"push\": ");
		buf_json_string(b, s.push);
		buf_puts(b, ", \"capabilities\": [");
		for (const char *c = s.caps; *c;) {
			size_t len = strcspn(c, " ");
			char name[32];
			snprintf(name, sizeof(name), "%.*s", (int)len, c);
			if (c != s.caps)
				buf_puts(b, ", ");
			buf_json_string(b, name);
			c += len + (c[len] == ' ');
		}
		buf_putc(b, ']');
		buf_printf(b, ", \"connections\": %u, \"last_sync\": %lld, \"backoff_ms\": %llu, "
			      "\"last_error\": ",
			   s.connections, (long long)s.last_sync, (unsigned long long)s.retry_in_ms);
		buf_json_string(b, s.last_error);
		buf_puts(b, ", \"folders\": [");
		struct state_folder *f = NULL;
		size_t nf = 0;
		if (s.st && state_folder_list(s.st, &f, &nf, NULL) < 0)
			nf = 0;
		for (size_t k = 0; k < nf; k++) {
			buf_puts(b, k ? ", {\"name\": " : "{\"name\": ");
			buf_json_string(b, f[k].name);
			buf_printf(b, ", \"messages\": %u, \"unread\": %u, \"last_sync\": %lld, "
				      "\"last_result\": ",
				   f[k].messages, f[k].unread, (long long)f[k].last_sync);
			buf_json_string(b, f[k].last_result ? f[k].last_result : "");
			buf_putc(b, '}');
		}
		state_folder_list_free(&f, nf);
		struct outbox_counts oc = outbox_counts_of(v[i]);
		buf_printf(b, "], \"outbox\": {\"queued\": %u, \"failed\": %u, \"next_try\": %lld}}",
			   oc.queued, oc.failed, (long long)oc.next_try);
	}
	buf_puts(b, "]}\n");
}

static void status_table(struct buf *b, struct account *const *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct account_status s;
		account_status(v[i], &s);
		buf_printf(b, "%s: %s, push %s, %u connection%s, last sync ", s.name, s.state,
			   s.push, s.connections, s.connections == 1 ? "" : "s");
		when(b, s.last_sync);
		if (s.retry_in_ms)
			buf_printf(b, ", retry in %.0f s", (double)s.retry_in_ms / 1000);
		buf_putc(b, '\n');
		if (s.last_error[0])
			buf_printf(b, "  error: %s\n", s.last_error);
		if (s.caps[0])
			buf_printf(b, "  capabilities: %s\n", s.caps);
		if (account_outbox(v[i])) {
			struct outbox_counts oc = outbox_counts_of(v[i]);
			buf_printf(b, "  outbox: %u queued, %u failed", oc.queued, oc.failed);
			if (oc.next_try) {
				buf_puts(b, ", next try ");
				when(b, oc.next_try);
			}
			buf_putc(b, '\n');
		}
		struct state_folder *f = NULL;
		size_t nf = 0;
		if (s.st && state_folder_list(s.st, &f, &nf, NULL) < 0)
			nf = 0;
		if (nf)
			buf_printf(b, "  %-30s %9s %7s  %s\n", "FOLDER", "MESSAGES", "UNREAD",
				   "LAST SYNC");
		for (size_t k = 0; k < nf; k++) {
			buf_printf(b, "  %-30s %9u %7u  ", f[k].name, f[k].messages, f[k].unread);
			when(b, f[k].last_sync);
			if (f[k].last_result && f[k].last_result[0] &&
			    strcmp(f[k].last_result, "ok") != 0)
				buf_printf(b, "  (%s)", f[k].last_result);
			buf_putc(b, '\n');
		}
		state_folder_list_free(&f, nf);
	}
}

/* status [ACCOUNT] [--json]: the option may also follow the command. */
static void cmd_status(struct control *ctl, struct answer *an, bool json, char **args, size_t n)
{
	const char *name = NULL;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(args[i], "--json") == 0) {
			json = true;
		} else if (!name && args[i][0] != '-') {
			name = args[i];
		} else {
			an->status = 2;
			buf_printf(&an->text, "mailferryctl: status: unexpected argument: %s\n",
				   args[i]);
			return;
		}
	}
	struct account *v[64];
	size_t nv = select_accounts(ctl, name, v, 64);
	if (name && nv == 0) {
		an->status = 2;
		buf_printf(&an->text, "mailferryctl: no account named %s\n", name);
	} else if (json) {
		status_json(&an->text, v, nv);
	} else {
		status_table(&an->text, v, nv);
	}
}

/* ---- sync ---- */

static void on_synced(void *ctx, int rc, const struct err *err)
{
	struct answer *an = ctx;
	if (rc < 0) {
		an->status = 1;
		buf_printf(&an->text, "%s\n", err->msg);
	}
	if (--an->waiting == 0)
		finish(an);
}

/* Whether the account syncs a folder of that (server) name. */
static bool has_folder(struct account *a, const char *name)
{
	struct account_status s;
	account_status(a, &s);
	struct state_folder *f = NULL;
	size_t nf = 0;
	if (!s.st || state_folder_list(s.st, &f, &nf, NULL) < 0)
		return false;
	bool found = false;
	for (size_t k = 0; k < nf && !found; k++)
		found = strcmp(f[k].name, name) == 0;
	state_folder_list_free(&f, nf);
	return found;
}

/* sync [ACCOUNT [FOLDER]] [--wait] [--allow-mass-delete] */
static void cmd_sync(struct control *ctl, struct answer *an, char **args, size_t n)
{
	const char *pos[2] = { NULL, NULL };
	size_t npos = 0;
	bool wait = false, mass = false;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(args[i], "--wait") == 0)
			wait = true;
		else if (strcmp(args[i], "--allow-mass-delete") == 0)
			mass = true;
		else if (npos < 2 && args[i][0] != '-')
			pos[npos++] = args[i];
		else {
			an->status = 2;
			buf_printf(&an->text, "mailferryctl: sync: unexpected argument: %s\n", args[i]);
			finish(an);
			return;
		}
	}
	struct account *v[64];
	size_t nv = select_accounts(ctl, pos[0], v, 64);
	if (nv == 0) {
		an->status = 2;
		buf_printf(&an->text, "mailferryctl: no account named %s\n", pos[0]);
		finish(an);
		return;
	}
	if (pos[1] && !has_folder(v[0], pos[1])) {
		an->status = 2;
		buf_printf(&an->text,
			   "mailferryctl: account %s has no folder %s (mailferryctl status %s "
			   "lists them)\n",
			   pos[0], pos[1], pos[0]);
		finish(an);
		return;
	}
	an->waiting = 1; /* held while asking, so no answer leaves early */
	bool started = false;
	for (size_t i = 0; i < nv; i++) {
		struct account_status st;
		account_status(v[i], &st);
		if (strcmp(st.state, "paused") == 0) {
			an->status = 1;
			buf_printf(&an->text,
				   "mailferryctl: account %s is paused (mailferryctl resume %s)\n",
				   st.name, st.name);
			continue;
		}
		if (wait)
			an->waiting++;
		started = true;
		account_sync_then(v[i], pos[1], mass, wait ? on_synced : NULL, an);
	}
	if (!wait && started)
		buf_printf(&an->text, "sync started\n");
	if (--an->waiting == 0)
		finish(an);
}

/* ---- outbox ---- */

/* Text from a message or a server, shortened to max bytes (not inside a
 * UTF-8 sequence) and made safe for a terminal. */
static void put_short(struct buf *b, const char *s, size_t max)
{
	size_t len = strlen(s);
	if (len <= max) {
		buf_put_visible(b, s);
		return;
	}
	while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
		max--;
	char *cut = xstrndup(s, max);
	buf_put_visible(b, cut);
	buf_puts(b, "...");
	free(cut);
}

static void entry_table(struct buf *b, const char *account, const struct outbox_entry *en,
			const char *sending)
{
	const char *state = outbox_entry_state(en, sending);
	buf_printf(b, "%s  %s  %s", en->id, account, state);
	bool waiting = strcmp(state, "queued") == 0 && en->st.next_try;
	if (waiting) {
		buf_puts(b, ", next try ");
		when(b, en->st.next_try);
	}
	if (en->st.attempts)
		buf_printf(b, ", %u attempt%s", en->st.attempts, en->st.attempts == 1 ? "" : "s");
	buf_putc(b, '\n');
	if (en->problem) {
		buf_puts(b, "  cannot be sent: ");
		put_short(b, en->problem, 200);
		buf_putc(b, '\n');
	} else {
		buf_puts(b, "  to ");
		for (size_t k = 0; k < en->rcpts.n && k < 3; k++) {
			buf_puts(b, k ? ", " : "");
			put_short(b, en->rcpts.v[k], 60);
		}
		if (en->rcpts.n > 3)
			buf_printf(b, " and %zu more", en->rcpts.n - 3);
		buf_puts(b, ": ");
		put_short(b, en->subject[0] ? en->subject : "(no subject)", 60);
		buf_putc(b, '\n');
	}
	if (en->st.reply[0] && (waiting || strcmp(state, "failed") == 0)) {
		buf_puts(b, strcmp(state, "failed") == 0 ? "  failed: " : "  last try: ");
		buf_put_visible(b, en->st.reply);
		buf_putc(b, '\n');
	} else if (en->st.state == OUTBOX_COMMITTED && strcmp(state, "failed") == 0) {
		buf_puts(b, "  failed: sending was interrupted after the message was handed over: "
			    "it may have been delivered\n");
	}
}

static void entry_json(struct buf *b, const char *account, const struct outbox_entry *en,
		       const char *sending)
{
	buf_puts(b, "{\"id\": ");
	buf_json_string(b, en->id);
	buf_puts(b, ", \"account\": ");
	buf_json_string(b, account);
	buf_puts(b, ", \"state\": ");
	buf_json_string(b, outbox_entry_state(en, sending));
	buf_printf(b, ", \"attempts\": %u, \"next_try\": %lld, \"reason\": ", en->st.attempts,
		   (long long)en->st.next_try);
	buf_json_string(b, en->problem ? en->problem : en->st.reply);
	buf_puts(b, ", \"from\": ");
	buf_json_string(b, en->from);
	buf_puts(b, ", \"recipients\": [");
	for (size_t k = 0; k < en->rcpts.n; k++) {
		buf_puts(b, k ? ", " : "");
		buf_json_string(b, en->rcpts.v[k]);
	}
	buf_puts(b, "], \"subject\": ");
	buf_json_string(b, en->subject);
	buf_putc(b, '}');
}

/* Recipients refused while their messages went to the others. */
static void refusals_out(struct buf *b, bool json, const char *account,
			 const struct outbox_refusal *r, size_t n, bool *first)
{
	for (size_t k = 0; k < n; k++, *first = false) {
		if (json) {
			buf_puts(b, *first ? "{\"account\": " : ", {\"account\": ");
			buf_json_string(b, account);
			buf_puts(b, ", \"id\": ");
			buf_json_string(b, r[k].id);
			buf_printf(b, ", \"when\": %lld, \"recipient\": ", (long long)r[k].when);
			buf_json_string(b, r[k].rcpt);
			buf_puts(b, ", \"reply\": ");
			buf_json_string(b, r[k].reply);
			buf_puts(b, ", \"subject\": ");
			buf_json_string(b, r[k].subject);
			buf_putc(b, '}');
			continue;
		}
		if (*first)
			buf_puts(b, "Sent, but refused for some recipients:\n");
		buf_puts(b, "  ");
		when(b, r[k].when);
		buf_printf(b, "  %s  %s  ", account, r[k].id);
		put_short(b, r[k].subject[0] ? r[k].subject : "(no subject)", 40);
		buf_puts(b, "\n    ");
		buf_put_visible(b, r[k].rcpt);
		buf_puts(b, ": ");
		buf_put_visible(b, r[k].reply);
		buf_putc(b, '\n');
	}
}

/* outbox list [ACCOUNT] */
static void outbox_list(struct answer *an, bool json, struct account **v, size_t nv)
{
	struct buf *b = &an->text;
	size_t shown = 0;
	buf_puts(b, json ? "{\"messages\": [" : "");
	for (size_t i = 0; i < nv; i++) {
		struct outbox_queue *q = account_outbox(v[i]);
		struct outbox_entry *e = NULL;
		size_t n = 0;
		struct err err;
		if (!q)
			continue;
		if (outbox_queue_list(q, &e, &n, &err) < 0) {
			an->status = 1;
			log_warn("account=%s outbox: %s", account_name(v[i]), err.msg);
		}
		for (size_t k = 0; k < n; k++, shown++) {
			if (json && shown)
				buf_puts(b, ", ");
			(json ? entry_json : entry_table)(b, account_name(v[i]), &e[k],
							  outbox_queue_sending(q));
		}
		outbox_list_free(&e, n);
	}
	if (!json && !shown)
		buf_puts(b, "The outbox is empty.\n");
	buf_puts(b, json ? "], \"refused\": [" : "");
	bool first = true;
	for (size_t i = 0; i < nv; i++) {
		struct outbox_queue *q = account_outbox(v[i]);
		size_t n = 0;
		const struct outbox_refusal *r = q ? outbox_queue_refusals(q, &n) : NULL;
		refusals_out(b, json, account_name(v[i]), r, n, &first);
	}
	buf_puts(b, json ? "]}\n" : "");
}

/* The one account whose outbox holds id (or a message whose ID starts with
 * it); its full ID in *full. Answers the usage error itself. */
static struct outbox_queue *find_message(struct control *ctl, struct answer *an,
					 const char *id, char **full, struct account **owner)
{
	size_t n, found = 0;
	struct account *const *all = ctl->ops->accounts(ctl->ctx, &n);
	struct outbox_queue *where = NULL;
	for (size_t i = 0; i < n; i++) {
		struct outbox_queue *q = account_outbox(all[i]);
		struct outbox_entry *v = NULL;
		size_t nv = 0;
		struct err err;
		if (!q || outbox_queue_list(q, &v, &nv, &err) < 0)
			continue;
		int k = outbox_list_find(v, nv, id);
		if (k >= 0 && !found++) {
			*full = xstrdup(v[k].id);
			where = q;
			*owner = all[i];
		}
		found += k == -EEXIST ? 2 : 0;
		outbox_list_free(&v, nv);
	}
	if (found == 1)
		return where;
	if (found)
		xfree(full);
	an->status = 2;
	buf_printf(&an->text, found ? "mailferryctl: %s names more than one message; give more of "
				      "its ID (mailferryctl outbox list)\n"
				    : "mailferryctl: no message %s in any outbox (mailferryctl "
				      "outbox list shows them)\n",
		   id);
	return NULL;
}

static void outbox_retry(struct control *ctl, struct answer *an, const char *id)
{
	char *full = NULL;
	struct account *a = NULL;
	struct outbox_queue *q = find_message(ctl, an, id, &full, &a);
	struct err err;
	if (!q)
		return;
	int rc = outbox_queue_retry(q, full, &err);
	struct account_status st;
	account_status(a, &st);
	if (rc == -EBUSY) {
		buf_printf(&an->text, "%s: being sent now\n", full);
	} else if (rc < 0) {
		an->status = 1;
		buf_printf(&an->text, "mailferryctl: %s\n", err.msg);
	} else if (strcmp(st.state, "paused") == 0) {
		buf_printf(&an->text, "%s: queued again; account %s is paused, it goes out on "
				      "resume\n",
			   full, st.name);
	} else {
		buf_printf(&an->text, "%s: queued again, sending\n", full);
	}
	free(full);
}

static void outbox_drop(struct control *ctl, struct answer *an, const char *id)
{
	char *full = NULL;
	struct account *a = NULL;
	struct outbox_queue *q = find_message(ctl, an, id, &full, &a);
	struct err err;
	if (!q)
		return;
	if (outbox_queue_drop(q, full, &err) < 0) {
		an->status = 1;
		buf_printf(&an->text, "mailferryctl: %s%s\n", err.msg,
			   err.code == -EBUSY ? "; it cannot be dropped now" : "");
	} else {
		buf_printf(&an->text, "%s: dropped\n", full);
	}
	free(full);
}

/* outbox [list [ACCOUNT] | retry ID | drop ID] [--json] */
static void cmd_outbox(struct control *ctl, struct answer *an, bool json, char **args, size_t n)
{
	const char *pos[3] = { NULL, NULL, NULL };
	size_t npos = 0;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(args[i], "--json") == 0)
			json = true;
		else if (npos < 2 && args[i][0] != '-')
			pos[npos++] = args[i];
		else
			pos[2] = args[i];
	}
	const char *sub = pos[0] ? pos[0] : "list";
	bool list = strcmp(sub, "list") == 0;
	bool change = strcmp(sub, "retry") == 0 || strcmp(sub, "drop") == 0;
	if (pos[2] || (!list && !change) || (change && !pos[1])) {
		an->status = 2;
		buf_printf(&an->text, "mailferryctl: usage: outbox [list [ACCOUNT] | retry ID | "
				      "drop ID]\n");
		return;
	}
	if (change) {
		(strcmp(sub, "retry") == 0 ? outbox_retry : outbox_drop)(ctl, an, pos[1]);
		return;
	}
	struct account *v[64];
	size_t nv = select_accounts(ctl, pos[1], v, 64);
	if (pos[1] && nv == 0) {
		an->status = 2;
		buf_printf(&an->text, "mailferryctl: no account named %s\n", pos[1]);
		return;
	}
	outbox_list(an, json, v, nv);
}

/* ---- the rest ---- */

static void for_accounts(struct control *ctl, struct answer *an, const char *name,
			 void (*fn)(struct account *), const char *done)
{
	struct account *v[64];
	size_t nv = select_accounts(ctl, name, v, 64);
	if (nv == 0) {
		an->status = 2;
		buf_printf(&an->text, "mailferryctl: no account named %s\n", name);
		return;
	}
	for (size_t i = 0; i < nv; i++) {
		fn(v[i]);
		buf_printf(&an->text, "%s: %s\n", account_name(v[i]), done);
	}
}

static void handle(void *ctx, struct ctl_conn *conn, char **words, size_t n)
{
	struct control *ctl = ctx;
	struct answer *an = xcalloc(1, sizeof(*an));
	an->conn = conn;
	bool json = n > 0 && strcmp(words[0], "--json") == 0;
	words += json, n -= json;
	const char *cmd = n ? words[0] : "";
	const char *arg = n > 1 ? words[1] : NULL;
	log_debug("event=ctl command=%s", cmd);
	if (strcmp(cmd, "status") == 0) {
		cmd_status(ctl, an, json, words + 1, n - 1);
	} else if (strcmp(cmd, "sync") == 0) {
		cmd_sync(ctl, an, words + 1, n - 1);
		return;
	} else if (strcmp(cmd, "outbox") == 0) {
		cmd_outbox(ctl, an, json, words + 1, n - 1);
	} else if (strcmp(cmd, "pause") == 0) {
		for_accounts(ctl, an, arg, account_pause, "paused");
	} else if (strcmp(cmd, "resume") == 0) {
		for_accounts(ctl, an, arg, account_resume, "resumed");
	} else if (strcmp(cmd, "reload") == 0) {
		struct err err;
		if (ctl->ops->reload(ctl->ctx, &err) < 0) {
			an->status = 1;
			buf_printf(&an->text, "reload refused, the running config is kept: %s\n",
				   err.msg);
		} else {
			buf_puts(&an->text, "reloaded\n");
		}
	} else if (strcmp(cmd, "log-level") == 0 && arg && log_level_parse(arg) >= 0) {
		log_set_level((enum log_level)log_level_parse(arg));
		buf_printf(&an->text, "log level %s\n", arg);
	} else if (strcmp(cmd, "stop") == 0) {
		buf_puts(&an->text, "stopping\n");
		finish(an);
		ctl->ops->stop(ctl->ctx);
		return;
	} else {
		an->status = 2;
		buf_printf(&an->text, "mailferryctl: unknown command or bad arguments: %s%s\n", cmd,
			   strcmp(cmd, "log-level") == 0 ? " (error, warn, info, debug, trace)" : "");
	}
	finish(an);
}

struct control *control_start(uv_loop_t *loop, const char *socket, const struct control_ops *ops,
			      void *ctx, struct err *err)
{
	struct control *ctl = xcalloc(1, sizeof(*ctl));
	ctl->ops = ops;
	ctl->ctx = ctx;
	ctl->server = ctl_server_start(loop, socket, handle, ctl, err);
	if (!ctl->server) {
		free(ctl);
		return NULL;
	}
	return ctl;
}

void control_stop(struct control **cp)
{
	struct control *ctl = *cp;
	if (!ctl)
		return;
	*cp = NULL;
	ctl_server_stop(&ctl->server);
	free(ctl);
}
