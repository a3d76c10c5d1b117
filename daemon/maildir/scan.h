/* Listing one Maildir folder's messages, fast: a readdir of new/ and cur/
 * and a parse of each name, no stat per file unless asked. The entries come
 * sorted by base name, the key the sync engine merge-joins on.
 *
 * The directories' modification times are read before the listing, so the
 * engine can skip the next rescan when they have not moved. Caveat: the
 * kernel stamps a directory change with a coarse clock (one timer tick, up
 * to 10 ms; a whole second or two on some file systems), so a change made in
 * the same tick as the last one may leave the time as it was. A stamp whose
 * times are too close to the moment they were read (maildir_stamp_trusted
 * false) proves nothing: rescan next time whatever the times say.
 * Pure C + POSIX: depends on core only. */
#ifndef MF_MAILDIR_SCAN_H
#define MF_MAILDIR_SCAN_H

#include "core/err.h"
#include "maildir/folder.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct maildir_stamp {
	struct timespec new_mtime, cur_mtime;
	struct timespec taken; /* the clock (CLOCK_REALTIME) just before they were read */
};

/* Reads the modification times of m's new/ and cur/. Returns 0 or a negative errno. */
int maildir_stamp_read(struct maildir *m, struct maildir_stamp *out, struct err *e);

/* Whether both directories' times are the same in a and b. */
bool maildir_stamp_equal(const struct maildir_stamp *a, const struct maildir_stamp *b);

/* Whether mtime is old enough, seen at now, that any later change is sure to
 * move it: 100 ms for times with nanoseconds (many timer ticks), 2 s for
 * whole-second times (file systems with second or FAT's 2 s granularity).
 * A time in the future is never trusted (the clock stepped back). */
bool maildir_mtime_trusted(const struct timespec *mtime, const struct timespec *now);

/* maildir_mtime_trusted for both times of s, seen at s->taken. */
bool maildir_stamp_trusted(const struct maildir_stamp *s);

struct maildir_entry {
	char *file;          /* owned: the name in new/ or cur/; base and unknown point
			      * into the same allocation */
	const char *base;    /* the unique part, NUL-terminated */
	const char *unknown; /* info letters we do not model, sorted, "" when none */
	unsigned flags;      /* enum msg_flag bits */
	bool in_new;
	bool dup; /* another entry has the same base (see maildir_scan) */
	/* With MAILDIR_SCAN_STAT only (0 otherwise): */
	uint64_t size;
	struct timespec mtime;
};

struct maildir_scan {
	struct maildir_entry *v; /* owned; sorted by base (strcmp), then new/ first, then file */
	size_t n;
	size_t skipped;   /* names in new/ or cur/ that are not messages (dotfiles aside) */
	size_t dup_bases; /* bases that appear more than once */
	struct maildir_stamp stamp; /* read before the listing */
	/* The directories did not change while they were read, and the stamp is
	 * trusted. When false, a message missing from the listing may only be in
	 * the middle of a reader's rename: do not infer a deletion from it. */
	bool consistent;
};

enum maildir_scan_opt {
	MAILDIR_SCAN_STAT = 1, /* also fill size and mtime (one fstatat per file) */
};

/* Lists m's messages into a new *out (free with maildir_scan_free). Names
 * starting with '.' are ignored; names that do not parse as messages
 * (maildir_name_parse) are counted in skipped. One message present twice
 * (in new/ and cur/, or twice with different flags: a reader that died in a
 * rename, or a rename that happened during the listing) gives two entries,
 * both marked dup, never one silently dropped. When the directories change
 * during the listing it is redone, up to three times in all. Returns 0 or a
 * negative errno (*out is then NULL). */
int maildir_scan(struct maildir *m, unsigned opts, struct maildir_scan **out, struct err *e);

/* Keeps the entries for which keep(entry, ctx) is true, in their order, and
 * frees the others: for a caller that needs only a few files of a big
 * listing from now on. The kept entries move in the array, their strings do
 * not (pointers to file, base and unknown stay valid). The counts and the
 * stamp still describe the listing as it was made. */
void maildir_scan_keep(struct maildir_scan *s,
		       bool (*keep)(const struct maildir_entry *en, void *ctx), void *ctx);

void maildir_scan_free(struct maildir_scan **s);

#endif
