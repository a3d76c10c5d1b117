/* Where an account's outbox and Sent folders are on disk. */
#ifndef MF_OUTBOX_PATHS_H
#define MF_OUTBOX_PATHS_H

#include "config/config.h"

/* Absolute paths (caller frees); the Sent path is NULL when sent = "". */
char *outbox_dir(const struct account_conf *a);
char *outbox_sent_dir(const struct account_conf *a);

#endif
