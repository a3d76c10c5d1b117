/* The account's hook commands (new_mail_command, post_sync_command), run
 * with /bin/sh -c through the loop, never blocking it. One run at a time per
 * hook: triggers that come while it runs are gathered into one more run
 * after it, so a burst of 500 messages costs a run or two, not 500. A run
 * that takes longer than HOOK_TIMEOUT_S is killed. Failures are logged and
 * change nothing else. The command sees:
 *   MAILFERRY_ACCOUNT   the account's name
 *   MAILFERRY_EVENT     "new-mail" or "post-sync"
 *   MAILFERRY_NEW       messages that arrived since the last run (new-mail)
 *   MAILFERRY_FOLDERS   the folders they arrived in, one per line */
#ifndef MF_HOOKS_H
#define MF_HOOKS_H

#include <uv.h>

#define HOOK_TIMEOUT_S 60

struct hook;

/* command NULL or "": the hook does nothing. */
struct hook *hook_new(uv_loop_t *loop, const char *account, const char *event,
		      const char *command);
/* Asks for a run reporting count new messages in folders (newline-separated;
 * may be NULL). */
void hook_trigger(struct hook *h, unsigned count, const char *folders);
/* Kills a running command. NULL-safe, clears *hp. */
void hook_free(struct hook **hp);

#endif
