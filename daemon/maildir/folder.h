/* One Maildir folder on disk: creating it durably, opening it (directory
 * handles on tmp/, new/ and cur/, so every later operation is relative to
 * them), making renames and removals durable, and cleaning stale files out of
 * tmp/. Blocking file system calls: run it off the event loop where that
 * matters; one struct maildir is used by one thread at a time.
 * Pure C + POSIX: depends on core only. */
#ifndef MF_MAILDIR_FOLDER_H
#define MF_MAILDIR_FOLDER_H

#include "core/err.h"

#include <stddef.h>
#include <time.h>

/* The Maildir convention: a file in tmp/ untouched this long is abandoned. */
#define MAILDIR_TMP_MAX_AGE (36 * 3600)

struct maildir;

/* Makes path a Maildir: creates it and its missing parents (plain
 * directories), then tmp/, new/ and cur/, all mode 0700, and fsyncs the parent
 * of every directory it creates, so the folder exists after a crash once this
 * returns. Does nothing (and syncs nothing) when all exist. Returns 0 or a
 * negative errno with e naming the path (-ENOTDIR when something in the way is
 * not a directory). */
int maildir_ensure(const char *path, struct err *e);

/* Opens the Maildir at path; label names it in every error message (the
 * folder's name as the user knows it, e.g. "INBOX"). Holds three directory
 * descriptors until maildir_free. Returns 0, or -ENOENT when path or one of
 * tmp/ new/ cur/ is missing ("not a Maildir"), or another negative errno. */
int maildir_open(struct maildir **out, const char *path, const char *label, struct err *e);

/* Closes m and sets *m to NULL (NULL-safe). Changes not yet made durable by
 * maildir_flush are flushed first, best effort (a failure is logged). */
void maildir_free(struct maildir **m);

const char *maildir_path(const struct maildir *m);
const char *maildir_label(const struct maildir *m);

/* Makes durable the renames and removals done in m so far (maildir_set_flags,
 * maildir_remove): one fsync per directory they touched. Call it before
 * recording those changes in the sync state. Returns 0 or a negative errno. */
int maildir_flush(struct maildir *m, struct err *e);

/* Removes regular files in tmp/ whose newest time (access, modification or
 * change) is more than max_age seconds old (MAILDIR_TMP_MAX_AGE by the
 * convention); the change time protects a delivery in progress whose
 * modification time was set to an old date. Also removes, whatever their
 * age, the files of our deliveries (maildir/deliver.h) whose process is gone:
 * what a crash or kill -9 left (docs/STATE.md). *removed (may be NULL) gets the
 * count. Returns 0 or a negative errno (files removed before it stay removed). */
int maildir_clean_tmp(struct maildir *m, time_t max_age, size_t *removed, struct err *e);

#endif
