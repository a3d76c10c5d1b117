#include "control.h"

#include "control_answer.h"
#include "control_outbox.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "ctl/server.h"
#include "state/state.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

struct control {
	struct ctl_server *server;
	const struct control_ops *ops;
	void *ctx;
};

static void finish(struct control_answer *an)
{
	ctl_conn_reply(an->conn, an->status, buf_str(&an->text));
	buf_free(&an->text);
	free(an);
}

void control_put_time(struct buf *b, int64_t t)
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

struct account *const *control_accounts(struct control *ctl, size_t *n)
{
	return ctl->ops->accounts(ctl->ctx, n);
}

size_t control_select_accounts(struct control *ctl, const char *name, struct account **out,
			       size_t cap)
{
	size_t n, k = 0;
	struct account *const *all = control_accounts(ctl, &n);
	for (size_t i = 0; i < n && k < cap; i++)
		if (!name || strcmp(account_name(all[i]), name) == 0)
			out[k++] = all[i];
	return k;
}

/* ---- status ---- */

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
		struct outbox_counts oc = control_outbox_counts(v[i]);
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
		control_put_time(b, s.last_sync);
		if (s.retry_in_ms)
			buf_printf(b, ", retry in %.0f s", (double)s.retry_in_ms / 1000);
		buf_putc(b, '\n');
		if (s.last_error[0])
			buf_printf(b, "  error: %s\n", s.last_error);
		if (s.caps[0])
			buf_printf(b, "  capabilities: %s\n", s.caps);
		if (account_outbox(v[i])) {
			struct outbox_counts oc = control_outbox_counts(v[i]);
			buf_printf(b, "  outbox: %u queued, %u failed", oc.queued, oc.failed);
			if (oc.next_try) {
				buf_puts(b, ", next try ");
				control_put_time(b, oc.next_try);
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
			control_put_time(b, f[k].last_sync);
			if (f[k].last_result && f[k].last_result[0] &&
			    strcmp(f[k].last_result, "ok") != 0)
				buf_printf(b, "  (%s)", f[k].last_result);
			buf_putc(b, '\n');
		}
		state_folder_list_free(&f, nf);
	}
}

/* status [ACCOUNT] [--json]: the option may also follow the command. */
static void cmd_status(struct control *ctl, struct control_answer *an, bool json, char **args,
		       size_t n)
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
	size_t nv = control_select_accounts(ctl, name, v, 64);
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
	struct control_answer *an = ctx;
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
static void cmd_sync(struct control *ctl, struct control_answer *an, char **args, size_t n)
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
	size_t nv = control_select_accounts(ctl, pos[0], v, 64);
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

/* ---- the rest ---- */

static void for_accounts(struct control *ctl, struct control_answer *an, const char *name,
			 void (*fn)(struct account *), const char *done)
{
	struct account *v[64];
	size_t nv = control_select_accounts(ctl, name, v, 64);
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
	struct control_answer *an = xcalloc(1, sizeof(*an));
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
		control_outbox(ctl, an, json, words + 1, n - 1);
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
