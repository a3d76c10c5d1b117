/* mailferryctl's outbox command (list, retry, drop), carried out on the
 * accounts' outbox queues (outbox_queue.h), and the outbox figures that
 * status shows. */
#ifndef MF_CONTROL_OUTBOX_H
#define MF_CONTROL_OUTBOX_H

#include "account.h"
#include "outbox_queue.h"

#include <stdbool.h>
#include <stddef.h>

struct control;
struct control_answer;

/* An account's outbox figures; all 0 without an smtp block (a failure to
 * read them is logged). */
struct outbox_counts control_outbox_counts(struct account *a);

/* outbox [list [ACCOUNT] | retry ID | drop ID] [--json]: args are the words
 * after "outbox"; the answer is written into an, which the caller sends. */
void control_outbox(struct control *ctl, struct control_answer *an, bool json, char **args,
		    size_t n);

#endif
