/* IMAP sequence and UID sets ("1:5,7,9:*"): parsing what servers send
 * (VANISHED, APPENDUID, COPYUID, MODIFIED, ESEARCH ALL), membership and
 * iteration, and building compact sets from sorted UIDs for commands,
 * split by length so a long set can go out in several commands.
 * Pure C: depends on core only. */
#ifndef MF_IMAP_SEQSET_H
#define MF_IMAP_SEQSET_H

#include "core/buf.h"
#include "core/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest text of one range, "4294967295:4294967295". */
#define IMAP_SEQSET_RANGE_MAX 21

struct imap_range {
	uint32_t lo, hi; /* 1 <= lo <= hi */
};

/* Always normalized: ranges sorted, disjoint and not adjacent. Start with
 * `struct imap_seqset s = { 0 };`, release with imap_seqset_free. */
struct imap_seqset {
	struct imap_range *ranges; /* owned */
	size_t n, cap;
};

/* Replaces s with the set written in str[0..len). "*" stands for star; star 0
 * refuses "*" (sets a server sends never contain it). Reversed ranges ("5:1")
 * are accepted. Returns 0, or -EINVAL with e naming the offset (s is then
 * empty): empty set, empty item, 0, numbers above 2^32-1, stray characters. */
int imap_seqset_parse(struct imap_seqset *s, const char *str, size_t len, uint32_t star,
                      struct err *e);

/* Replaces s with the set of uids[0..n), which must be ascending and non-zero
 * (duplicates are fine); anything else is a BUG. */
void imap_seqset_from_sorted(struct imap_seqset *s, const uint32_t *uids, size_t n);

bool imap_seqset_contains(const struct imap_seqset *s, uint32_t v);
/* How many numbers the set holds (up to 2^32-1). */
uint64_t imap_seqset_count(const struct imap_seqset *s);

/* Appends ranges[first..] to b as "a:b,c,...", stopping before the range that
 * would make the appended text longer than max_len bytes (max_len must be at
 * least IMAP_SEQSET_RANGE_MAX). Returns the index of the first range not
 * written: s->n when all are out. Loop from 0 until s->n to split a set into
 * commands of bounded length. */
size_t imap_seqset_format(struct buf *b, const struct imap_seqset *s, size_t first, size_t max_len);

void imap_seqset_free(struct imap_seqset *s);

/* Ascending iteration:
 *	struct imap_seqset_iter it;
 *	imap_seqset_iter_init(&it, &s);
 *	while (imap_seqset_iter_next(&it, &uid)) ... */
struct imap_seqset_iter {
	const struct imap_seqset *set; /* borrowed */
	size_t range;
	uint64_t next;
};

void imap_seqset_iter_init(struct imap_seqset_iter *it, const struct imap_seqset *s);
bool imap_seqset_iter_next(struct imap_seqset_iter *it, uint32_t *out);

#endif
