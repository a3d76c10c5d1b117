/* Shared inside daemon/maildir only: the open folder's fields and the
 * helpers every file system operation uses. */
#ifndef MF_MAILDIR_INTERNAL_H
#define MF_MAILDIR_INTERNAL_H

#include "core/err.h"

#include <stdbool.h>

enum maildir_sub { MAILDIR_TMP, MAILDIR_NEW, MAILDIR_CUR };

struct maildir {
	char *path;     /* owned */
	char *label;    /* owned */
	int fd[3];      /* tmp/ new/ cur/, indexed by enum maildir_sub */
	unsigned dirty; /* bit (1 << sub): entries changed, directory not yet fsynced */
};

static inline enum maildir_sub maildir_sub_of(bool in_new)
{
	return in_new ? MAILDIR_NEW : MAILDIR_CUR;
}

const char *maildir_sub_name(enum maildir_sub sub);

/* Fills e with "LABEL: REASON while WHAT" (REASON "disk full (No space left
 * on device)" for ENOSPC, strerror otherwise), class ERR_LOCAL; returns rc. */
int maildir_fs_error(struct err *e, int rc, const char *label, const char *what_fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* fsyncs one directory of m and clears its dirty bit on success. */
int maildir_sync_sub(struct maildir *m, enum maildir_sub sub);

/* Renames without ever replacing an existing file; returns 0 or -errno. */
int maildir_rename(int from_dir, const char *from, int to_dir, const char *to);

#endif
