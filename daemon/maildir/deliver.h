/* Durable, streaming delivery of messages into Maildir folders, in batches.
 *
 * A delivery is a file created in tmp/ under a new unique name (O_EXCL) that
 * takes the message in chunks as they arrive (a 50 MB message never sits in
 * memory). Finishing it gives its flags (new/ or cur/, and the ":2,"
 * letters) and its date (the file's mtime: IMAP INTERNALDATE). Committing the
 * batch then makes every finished delivery durable and visible in this order:
 *   1. each file's data and mtime are fsynced (in parallel threads, so the
 *      file system commits them together: one journal commit for the batch,
 *      not one per message);
 *   2. each file is renamed from tmp/ into new/ or cur/ (never replacing);
 *   3. each directory that received files is fsynced, once.
 * Only when the commit has returned may the caller record a delivery in its
 * sync state. A crash at any point leaves at worst a stale file in tmp/
 * (removed later by maildir_clean_tmp), or a message in new/ or cur/ that the
 * state does not know yet: record the base name (maildir_delivery_base,
 * known from the start) as an intent before committing to recognise it.
 *
 * A failed delivery (disk full, I/O error) removes its file: nothing of it
 * stays in tmp/, new/ or cur/, and its error names the folder and the reason:
 * "INBOX: disk full (No space left on device) while writing a message".
 * Blocking file system calls; a batch is used by one thread at a time.
 * Pure C + POSIX (threads for the parallel fsync): depends on core only. */
#ifndef MF_MAILDIR_DELIVER_H
#define MF_MAILDIR_DELIVER_H

#include "core/err.h"
#include "maildir/folder.h"

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* Finished deliveries keep their file open until the commit; past this many
 * the finish itself syncs the pending ones (still renaming them only at the
 * commit), so a large batch does not run out of file descriptors. */
#define MAILDIR_BATCH_OPEN_MAX 64

struct maildir_batch;
struct maildir_delivery;

struct maildir_batch *maildir_batch_new(void);

/* Frees the batch and all its deliveries, setting *b to NULL (NULL-safe). A
 * delivery not committed is aborted: its file in tmp/ is removed. */
void maildir_batch_free(struct maildir_batch **b);

/* Starts a delivery into m (borrowed: it must outlive the batch) by creating
 * its file in tmp/. *out is owned by the batch and valid until
 * maildir_batch_free. Returns 0, or a negative errno (*out NULL, nothing left
 * on disk). */
int maildir_batch_add(struct maildir_batch *b, struct maildir *m, struct maildir_delivery **out,
		      struct err *e);

/* The delivery's unique base name, fixed from the start. */
const char *maildir_delivery_base(const struct maildir_delivery *d);

/* Appends p[0..len) to the message. On failure the delivery is dead: its
 * file is removed, e says why, and every later call returns the same error.
 * Returns 0 or a negative errno. */
int maildir_delivery_write(struct maildir_delivery *d, const void *p, size_t len, struct err *e);

/* Ends the message. flags (enum msg_flag) choose cur/ for \Seen, new/
 * otherwise, and the info letters; unknown (NULL for none) adds letters we do
 * not model. mtime (NULL: keep the time of writing) becomes the file's access
 * and modification time. The message is neither durable nor visible yet.
 * Returns 0 or a negative errno (the delivery is then dead, as above). */
int maildir_delivery_finish(struct maildir_delivery *d, unsigned flags, const char *unknown,
			    const struct timespec *mtime, struct err *e);

/* Gives up a delivery that is not committed: its file is removed. Does
 * nothing to a committed, failed or aborted delivery. */
void maildir_delivery_abort(struct maildir_delivery *d);

/* Makes every finished delivery of b durable and visible (the order is in
 * the comment at the top). Deliveries still being written are left as they
 * are and can be committed by a later call. Each finished delivery ends
 * committed or failed (see maildir_delivery_status); returns 0 when all those
 * finished since the last commit succeeded, else the first failure's
 * negative errno with e holding its error. */
int maildir_batch_commit(struct maildir_batch *b, struct err *e);

/* 0 once committed; the negative errno of a failed delivery (*e, if not
 * NULL, then points to its error, owned by the delivery); -EINPROGRESS while
 * being written or waiting for a commit; -ECANCELED once aborted. */
int maildir_delivery_status(const struct maildir_delivery *d, const struct err **e);

/* The file name in new/ or cur/ (known from maildir_delivery_finish on, final
 * once committed; NULL before), and which of the two. */
const char *maildir_delivery_file(const struct maildir_delivery *d);
bool maildir_delivery_in_new(const struct maildir_delivery *d);

#endif
