/* The IMAP response parser, fed in chunk sizes derived from the input, with
 * and without a literal sink. Oracles: the chunked run gives exactly the
 * responses, sink bytes and error of the whole-input run; every sink handle
 * is taken or aborted exactly once (ASan sees leaks and double frees); sets
 * found in the tree survive format and parse. */
#include "core/buf.h"
#include "core/xalloc.h"
#include "imap/parse.h"
#include "imap/seqset.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct handle {
	uint64_t hash, len;
	int *live;
};

struct fsink {
	int live; /* handles open and not yet released */
	int mode; /* 1: every literal, 2: BODY[] only, 3: writes fail after 64 bytes */
};

static void *f_open(void *ctx, const struct imap_response *partial, const char *item, uint64_t size)
{
	struct fsink *s = ctx;
	(void)size;
	if (partial->kind != IMAP_RESP_UNTAGGED || !partial->name)
		abort(); /* literals only come after "* [n] NAME" */
	if (s->mode == 2 && (!item || strcmp(item, "BODY[]") != 0))
		return NULL;
	struct handle *h = xcalloc(1, sizeof(*h));
	h->hash = 1469598103934665603ull;
	h->live = &s->live;
	s->live++;
	return h;
}

static int f_write(void *ctx, void *hp, const char *p, size_t n)
{
	struct fsink *s = ctx;
	struct handle *h = hp;
	if (!n)
		abort();
	if (s->mode == 3 && h->len + n > 64)
		return -28; /* -ENOSPC */
	for (size_t i = 0; i < n; i++)
		h->hash = (h->hash ^ (unsigned char)p[i]) * 1099511628211ull;
	h->len += n;
	return 0;
}

static void release(struct handle *h)
{
	(*h->live)--;
	free(h);
}

static void f_abort(void *ctx, void *hp)
{
	(void)ctx;
	release(hp);
}

static void check_set(const struct imap_value *v)
{
	const char *s = imap_value_astring(v, NULL);
	struct imap_seqset set = {0}, back = {0};
	if (!s || imap_seqset_parse(&set, s, v->len, 1000, NULL) != 0)
		goto out;
	struct buf b = {0};
	if (imap_seqset_format(&b, &set, 0, SIZE_MAX) != set.n)
		abort();
	if (imap_seqset_parse(&back, b.data, b.len, 0, NULL) != 0 || back.n != set.n ||
	    memcmp(back.ranges, set.ranges, set.n * sizeof(*set.ranges)) != 0)
		abort();
	buf_free(&b);
out:
	imap_seqset_free(&set);
	imap_seqset_free(&back);
}

/* Takes every sink of the tree (as the client would), noting its bytes. */
static void walk(struct buf *out, struct imap_response *r, const struct imap_value *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct imap_value *items;
		size_t k;
		if (imap_value_list(&v[i], &items, &k))
			walk(out, r, items, k);
		struct handle *h = imap_response_take_sink(r, &v[i]);
		if (h) {
			buf_printf(out, " sink=%llx/%llu", (unsigned long long)h->hash,
			           (unsigned long long)h->len);
			release(h);
		}
		if (v[i].type == IMAP_ATOM || v[i].type == IMAP_NUMBER)
			check_set(&v[i]);
	}
}

static void take(struct imap_reader *rd, struct buf *out)
{
	struct imap_response *r = imap_reader_take(rd);
	if (!r)
		abort();
	imap_response_format(out, r);
	if (strlen(imap_response_line(r)) > 203)
		abort();
	imap_response_fetch(r, "BODY[]");
	/* Every other response leaves its sinks to imap_response_free. */
	if (out->len & 1)
		walk(out, r, r->args, r->nargs);
	buf_putc(out, '\n');
	imap_response_free(&r);
}

static const struct imap_limits tiny = {64, 4, 16, 16, 1024};

/* chunk_seed 0: whole. Returns how far the input was consumed. */
static size_t run(const uint8_t *p, size_t len, uint32_t chunk_seed, int opts, struct buf *out,
                  struct fsink *fs, struct imap_reader **keep)
{
	const struct imap_limits *lims[] = {&imap_limits_before_login, &imap_limits_after_login,
	                                    &tiny, &imap_limits_after_login};
	struct imap_sink sink = {f_open, f_write, f_abort, fs};
	struct imap_reader *rd = imap_reader_new(lims[opts & 3]);
	fs->mode = (opts >> 2) & 3;
	if (fs->mode)
		imap_reader_set_sink(rd, &sink);
	size_t pos = 0;
	uint32_t seed = chunk_seed;
	while (pos < len) {
		size_t n = len - pos;
		if (chunk_seed) {
			seed = seed * 1103515245u + 12345u;
			size_t c = 1 + (seed >> 16) % 17;
			n = n < c ? n : c;
		}
		size_t used, off = 0;
		for (;;) {
			enum parse_res res =
			    imap_reader_feed(rd, (const char *)p + pos + off, n - off, &used);
			off += used;
			if (res == PARSE_ERR) {
				if (!imap_reader_err(rd)->msg[0])
					abort();
				buf_printf(out, "ERR %s\n", imap_reader_err(rd)->msg);
				goto done;
			}
			if (res == PARSE_MORE)
				break;
			take(rd, out);
		}
		if (off != n)
			abort();
		pos += n;
	}
done:
	if (keep) {
		*keep = rd;
	} else {
		imap_reader_free(&rd);
		if (fs->live)
			abort();
	}
	return pos;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	int opts = data[0];
	uint32_t seed = data[1] + 1;
	data += 2;
	size -= 2;
	struct buf whole = {0}, chunked = {0};
	struct fsink fs = {0};
	run(data, size, 0, opts, &whole, &fs, NULL);
	run(data, size, seed, opts, &chunked, &fs, NULL);
	if (strcmp(buf_str(&whole), buf_str(&chunked)) != 0)
		abort();
	/* After an error, a reset reader reads the rest as a fresh stream. */
	struct imap_reader *rd;
	struct buf more = {0};
	size_t pos = run(data, size, seed, opts, &more, &fs, &rd);
	if (pos < size) {
		imap_reader_reset(rd);
		size_t used, off = pos;
		while (off < size) {
			enum parse_res res =
			    imap_reader_feed(rd, (const char *)data + off, size - off, &used);
			off += used;
			if (res == PARSE_DONE)
				take(rd, &more);
			else
				break;
		}
	}
	imap_reader_free(&rd);
	if (fs.live)
		abort();
	buf_free(&whole);
	buf_free(&chunked);
	buf_free(&more);
	return 0;
}
