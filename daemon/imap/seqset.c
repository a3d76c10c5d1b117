#include "imap/seqset.h"

#include "core/xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static void push(struct imap_seqset *s, uint32_t lo, uint32_t hi)
{
	s->ranges = xgrow(s->ranges, &s->cap, s->n + 1, sizeof(*s->ranges));
	s->ranges[s->n++] = (struct imap_range){lo, hi};
}

static int fail(struct imap_seqset *s, struct err *e, size_t off, const char *what)
{
	s->n = 0;
	return err_set(e, -EINVAL, ERR_PERM, "invalid sequence set at offset %zu: %s", off, what);
}

/* Reads a number or "*" at str[*i]; returns NULL or why it is refused. */
static const char *number(const char *str, size_t len, size_t *i, uint32_t star, uint32_t *out)
{
	if (*i < len && str[*i] == '*') {
		if (!star)
			return "'*' is not allowed here";
		(*i)++;
		*out = star;
		return NULL;
	}
	uint64_t v = 0;
	size_t start = *i;
	while (*i < len && str[*i] >= '0' && str[*i] <= '9') {
		v = v * 10 + (uint64_t)(str[*i] - '0');
		if (v > UINT32_MAX)
			return "number above 4294967295";
		(*i)++;
	}
	if (*i == start)
		return "expected a number or '*'";
	if (v == 0)
		return "0 is not a valid number";
	*out = (uint32_t)v;
	return NULL;
}

static int cmp_range(const void *a, const void *b)
{
	const struct imap_range *x = a, *y = b;
	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Sorts and merges overlapping or adjacent ranges. */
static void normalize(struct imap_seqset *s)
{
	if (s->n < 2)
		return;
	qsort(s->ranges, s->n, sizeof(*s->ranges), cmp_range);
	size_t out = 0;
	for (size_t i = 1; i < s->n; i++) {
		struct imap_range *cur = &s->ranges[out], *r = &s->ranges[i];
		if ((uint64_t)r->lo <= (uint64_t)cur->hi + 1) {
			if (r->hi > cur->hi)
				cur->hi = r->hi;
		} else {
			s->ranges[++out] = *r;
		}
	}
	s->n = out + 1;
}

int imap_seqset_parse(struct imap_seqset *s, const char *str, size_t len, uint32_t star,
                      struct err *e)
{
	size_t i = 0;
	s->n = 0;
	for (;;) {
		uint32_t lo, hi;
		const char *why = number(str, len, &i, star, &lo);
		if (why)
			return fail(s, e, i, why);
		hi = lo;
		if (i < len && str[i] == ':') {
			i++;
			why = number(str, len, &i, star, &hi);
			if (why)
				return fail(s, e, i, why);
		}
		push(s, lo < hi ? lo : hi, lo < hi ? hi : lo);
		if (i == len)
			break;
		if (str[i] != ',')
			return fail(s, e, i, "expected ',' or ':'");
		i++;
	}
	normalize(s);
	return 0;
}

void imap_seqset_from_sorted(struct imap_seqset *s, const uint32_t *uids, size_t n)
{
	s->n = 0;
	for (size_t i = 0; i < n; i++) {
		BUG_ON(uids[i] == 0);
		if (s->n) {
			struct imap_range *last = &s->ranges[s->n - 1];
			BUG_ON(uids[i] < last->hi);
			if ((uint64_t)uids[i] <= (uint64_t)last->hi + 1) {
				last->hi = uids[i];
				continue;
			}
		}
		push(s, uids[i], uids[i]);
	}
}

bool imap_seqset_contains(const struct imap_seqset *s, uint32_t v)
{
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v < s->ranges[mid].lo)
			hi = mid;
		else if (v > s->ranges[mid].hi)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

uint64_t imap_seqset_count(const struct imap_seqset *s)
{
	uint64_t n = 0;
	for (size_t i = 0; i < s->n; i++)
		n += (uint64_t)s->ranges[i].hi - s->ranges[i].lo + 1;
	return n;
}

size_t imap_seqset_format(struct buf *b, const struct imap_seqset *s, size_t first, size_t max_len)
{
	BUG_ON(max_len < IMAP_SEQSET_RANGE_MAX);
	size_t used = 0, i;
	for (i = first; i < s->n; i++) {
		char tmp[IMAP_SEQSET_RANGE_MAX + 2];
		const struct imap_range *r = &s->ranges[i];
		int n = r->lo == r->hi ? snprintf(tmp, sizeof(tmp), ",%u", r->lo)
		                       : snprintf(tmp, sizeof(tmp), ",%u:%u", r->lo, r->hi);
		/* The leading comma goes out only between ranges. */
		const char *text = i == first ? tmp + 1 : tmp;
		size_t tlen = (size_t)n - (i == first);
		if (used + tlen > max_len)
			break;
		buf_append(b, text, tlen);
		used += tlen;
	}
	return i;
}

void imap_seqset_free(struct imap_seqset *s)
{
	xfree(&s->ranges);
	s->n = s->cap = 0;
}

void imap_seqset_iter_init(struct imap_seqset_iter *it, const struct imap_seqset *s)
{
	it->set = s;
	it->range = 0;
	it->next = s->n ? s->ranges[0].lo : 0;
}

bool imap_seqset_iter_next(struct imap_seqset_iter *it, uint32_t *out)
{
	const struct imap_seqset *s = it->set;
	if (it->range >= s->n)
		return false;
	*out = (uint32_t)it->next;
	if (it->next == s->ranges[it->range].hi) {
		if (++it->range < s->n)
			it->next = s->ranges[it->range].lo;
	} else {
		it->next++;
	}
	return true;
}
