/* What is in an outbox, as mailferryctl outbox shows it, and the two things a
 * user does to a message there: queue it again, or drop it. Files only (no
 * loop, no network): the daemon decides when these may run (never on the
 * message being sent) and what follows them.
 *
 * A message's ID is its Maildir base name, the name its status file and the
 * daemon's log lines (message=ID) use too. */
#ifndef MF_OUTBOX_LIST_H
#define MF_OUTBOX_LIST_H

#include "core/err.h"
#include "outbox/addr.h"
#include "outbox/status.h"

#include <stdbool.h>
#include <stddef.h>

struct outbox_entry {
	char *id;
	char *file; /* its name in new/ or cur/ */
	bool in_new;
	struct outbox_status st;
	/* From the header (with OUTBOX_LIST_HEADERS): the sender and the Subject
	 * ("" when unknown), the recipients (empty when unknown). */
	char *from, *subject;
	struct addr_list rcpts;
	char *problem; /* why the header cannot be read (a malformed message), or NULL */
};

#define OUTBOX_LIST_HEADERS 1

/* Reads the outbox at dir (a missing one is empty): every message and its
 * status, in the order they came (oldest first). Returns 0 or a negative
 * errno; *v is freed with outbox_list_free. */
int outbox_list_read(const char *dir, unsigned flags, struct outbox_entry **v, size_t *n,
		     struct err *e);
void outbox_list_free(struct outbox_entry **v, size_t n);

/* What the user is shown for en: "queued" (due, or waiting for next_try),
 * "sending" (sending is the ID on the wire, or NULL; a message a crash left
 * filing was sent and is being filed) or "failed" (also one a crash left
 * committed: the next drain marks it so, "may have been delivered"). */
const char *outbox_entry_state(const struct outbox_entry *en, const char *sending);

/* The entry whose ID is id, or else the only one whose ID starts with it;
 * -ENOENT (none) or -EEXIST (several start with it). */
int outbox_list_find(const struct outbox_entry *v, size_t n, const char *id);

/* Queues the message again, due now: its status goes (a failed, waiting or
 * uncertain message becomes a fresh one). */
int outbox_entry_requeue(const char *dir, const struct outbox_entry *en, struct err *e);
/* Removes the message and then its status. */
int outbox_entry_drop(const char *dir, const struct outbox_entry *en, struct err *e);

#endif
