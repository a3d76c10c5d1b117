/* What the control socket's command files share (control.c, control_outbox.c):
 * the command being answered, times as the user reads them, and the accounts
 * a command names. Internal to the daemon's control; mailferryctl does not
 * see it. */
#ifndef MF_CONTROL_ANSWER_H
#define MF_CONTROL_ANSWER_H

#include "account.h"
#include "core/buf.h"
#include "ctl/server.h"

#include <stddef.h>
#include <stdint.h>

struct control;

/* One command being answered; sync --wait answers when its last pass ends. */
struct control_answer {
	struct ctl_conn *conn;
	struct buf text;
	int status;
	unsigned waiting;
};

/* Appends t (seconds since the epoch) as local "YYYY-MM-DD HH:MM:SS", or
 * "never" when it is 0. */
void control_put_time(struct buf *b, int64_t t);

/* All running accounts (borrowed), *n of them. */
struct account *const *control_accounts(struct control *ctl, size_t *n);

/* The accounts a command names: the one called name, or all when name is
 * NULL; at most cap of them into out. Returns how many. */
size_t control_select_accounts(struct control *ctl, const char *name, struct account **out,
			       size_t cap);

#endif
