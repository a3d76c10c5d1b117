/* What the outbox knows of each queued message beyond the message itself:
 * a small status file per message, OUTBOX/.mailferry/BASE, written
 * atomically and durably (tmp file, fsync, rename, fsync of the directory),
 * readable by mailferryctl without the daemon. No file: queued, never tried.
 *
 * The states and what a crash in each means (docs/OUTBOX.md):
 *   queued     waiting (next_try says until when, after a transient failure)
 *   committed  the final "." of DATA is on its way: the server may have the
 *              message. Found after a crash, it is not sent again on its own:
 *              it becomes failed ("may have been delivered"), for the user to
 *              retry or drop -- SMTP cannot tell us which.
 *   filing     the server took it (250); the Sent copy is being made under
 *              sent_base: after a crash the copy is made again unless there.
 *   failed     refused for good (5xx), malformed, or uncertain as above;
 *              reply says why. `mailferryctl outbox retry` makes it queued. */
#ifndef MF_OUTBOX_STATUS_H
#define MF_OUTBOX_STATUS_H

#include "core/err.h"

#include <stdint.h>

enum outbox_state { OUTBOX_QUEUED, OUTBOX_COMMITTED, OUTBOX_FILING, OUTBOX_FAILED };

struct outbox_status {
	enum outbox_state state;
	unsigned attempts;
	int64_t next_try; /* Unix time; 0: now */
	char sent_base[128];
	char reply[1024]; /* the server's answer or our reason, one line */
};

/* Reads the status of base in the outbox folder at dir; a missing file is
 * a fresh "queued". Returns 0 or a negative errno. */
int outbox_status_read(const char *dir, const char *base, struct outbox_status *st,
		       struct err *e);
int outbox_status_write(const char *dir, const char *base, const struct outbox_status *st,
			struct err *e);
/* Removes the status file (missing is fine). */
int outbox_status_remove(const char *dir, const char *base, struct err *e);
const char *outbox_state_name(enum outbox_state s);

#endif
