/* The control protocol's request parser. Oracles: the input fed whole and in
 * pieces (sizes taken from the input's first byte) gives the same verdict;
 * a request ends exactly at its terminating empty word; a complete request
 * holds at most CTL_MAX_WORDS non-empty words and encodes back to the input
 * byte for byte; nothing is accepted beyond CTL_MAX_BYTES. */
#include "core/buf.h"
#include "ctl/request.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Feeds in pieces of 1..step bytes; returns the verdict and where the
 * request ended (*end, for CTL_DONE). */
static enum ctl_parse feed_pieces(struct ctl_request *r, const char *p, size_t n, size_t step,
				  size_t *end)
{
	enum ctl_parse res = CTL_MORE;
	size_t off = 0;
	while (off < n && res == CTL_MORE) {
		size_t k = n - off < step ? n - off : step;
		/* byte by byte near a possible end, so it is found exactly */
		if (memchr(p + off, '\0', k))
			k = 1;
		res = ctl_request_feed(r, p + off, k);
		off += k;
	}
	*end = off;
	return res;
}

static void check_done(const struct ctl_request *r, const char *p, size_t n)
{
	if (r->nwords > CTL_MAX_WORDS || r->words[r->nwords] != NULL || n > CTL_MAX_BYTES)
		abort();
	struct buf b = { 0 };
	for (size_t i = 0; i < r->nwords; i++)
		if (r->words[i][0] == '\0')
			abort();
	ctl_request_encode(&b, (int)r->nwords, r->words);
	if (b.len != n || memcmp(b.data, p, n) != 0)
		abort();
	buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t step = (size_t)data[0] % 64 + 1;
	const char *p = (const char *)data + 1;
	size_t n = size - 1;

	struct ctl_request whole = { 0 }, pieces = { 0 };
	enum ctl_parse a = ctl_request_feed(&whole, p, n);
	size_t end;
	enum ctl_parse b = feed_pieces(&pieces, p, n, step, &end);
	if (a == CTL_DONE) {
		if (b != CTL_DONE || end != n)
			abort();
		check_done(&whole, p, n);
		check_done(&pieces, p, n);
		for (size_t i = 0; i <= whole.nwords; i++)
			if ((whole.words[i] == NULL) != (pieces.words[i] == NULL) ||
			    (whole.words[i] && strcmp(whole.words[i], pieces.words[i]) != 0))
				abort();
	} else if (b == CTL_DONE) {
		/* the request ended before the input did: whole, that is an error */
		if (a != CTL_BAD || end >= n)
			abort();
		check_done(&pieces, p, end);
	} else if (a == CTL_MORE && n > CTL_MAX_BYTES) {
		abort();
	}
	if (a == CTL_BAD && !whole.why)
		abort();
	ctl_request_free(&whole);
	ctl_request_free(&pieces);
	return 0;
}
