#include "control_outbox.h"

#include "control_answer.h"
#include "core/log.h"
#include "core/xalloc.h"

#include <errno.h>
#include <string.h>

struct outbox_counts control_outbox_counts(struct account *a)
{
	struct outbox_counts c = { 0 };
	struct err err;
	struct outbox_queue *q = account_outbox(a);
	if (q && outbox_queue_counts(q, &c, &err) < 0)
		log_warn("account=%s outbox: %s", account_name(a), err.msg);
	return c;
}

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
		control_put_time(b, en->st.next_try);
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
		control_put_time(b, r[k].when);
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
static void outbox_list(struct control_answer *an, bool json, struct account **v, size_t nv)
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
static struct outbox_queue *find_message(struct control *ctl, struct control_answer *an,
					 const char *id, char **full, struct account **owner)
{
	size_t n, found = 0;
	struct account *const *all = control_accounts(ctl, &n);
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

static void outbox_retry(struct control_answer *an, struct outbox_queue *q, const char *full,
			 struct account *a)
{
	struct err err;
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
}

static void outbox_drop(struct control_answer *an, struct outbox_queue *q, const char *full)
{
	struct err err;
	if (outbox_queue_drop(q, full, &err) < 0) {
		an->status = 1;
		buf_printf(&an->text, "mailferryctl: %s%s\n", err.msg,
			   err.code == -EBUSY ? "; it cannot be dropped now" : "");
	} else {
		buf_printf(&an->text, "%s: dropped\n", full);
	}
}

/* outbox retry ID | outbox drop ID */
static void outbox_change(struct control *ctl, struct control_answer *an, const char *sub,
			  const char *id)
{
	char *full = NULL;
	struct account *a = NULL;
	struct outbox_queue *q = find_message(ctl, an, id, &full, &a);
	if (!q)
		return;
	if (strcmp(sub, "retry") == 0)
		outbox_retry(an, q, full, a);
	else
		outbox_drop(an, q, full);
	free(full);
}

/* outbox [list [ACCOUNT] | retry ID | drop ID] [--json] */
void control_outbox(struct control *ctl, struct control_answer *an, bool json, char **args,
		    size_t n)
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
		outbox_change(ctl, an, sub, pos[1]);
		return;
	}
	struct account *v[64];
	size_t nv = control_select_accounts(ctl, pos[1], v, 64);
	if (pos[1] && nv == 0) {
		an->status = 2;
		buf_printf(&an->text, "mailferryctl: no account named %s\n", pos[1]);
		return;
	}
	outbox_list(an, json, v, nv);
}
