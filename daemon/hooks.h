/* The account's hook commands (new_mail_command, post_sync_command), run
 * with /bin/sh -c through the loop, never blocking it. One run at a time per
 * hook, and runs start at least HOOK_SPACING_MS apart: triggers that come
 * meanwhile are gathered into one more run, so a burst of 500 messages costs
 * a run or a few, not 500. A run that takes longer than its timeout is
 * killed with its whole process group. Failures are logged and change
 * nothing else. The command sees, beside the daemon's environment:
 *   MAILFERRY_ACCOUNT   the account's name
 *   MAILFERRY_EVENT     "new-mail" or "post-sync"
 *   MAILFERRY_NEW       messages that arrived since the hook's last run
 *   MAILFERRY_FOLDERS   the folders they arrived in, one per line */
#ifndef MF_HOOKS_H
#define MF_HOOKS_H

#include <uv.h>

#define HOOK_SPACING_MS 5000

struct hook;

/* command NULL or "": the hook does nothing. timeout_s: how long a run may
 * take. */
struct hook *hook_new(uv_loop_t *loop, const char *account, const char *event, const char *command,
		      unsigned timeout_s);
/* Asks for a run reporting count new messages in folders (newline-separated;
 * may be NULL). */
void hook_trigger(struct hook *h, unsigned count, const char *folders);
/* Kills a running command. NULL-safe, clears *hp. */
void hook_free(struct hook **hp);

#endif
