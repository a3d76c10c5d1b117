/* The POP3 response parser, fed whole and in chunk sizes derived from the
 * input. The first bytes choose, per status line, whether a +OK opens a
 * listing, a streamed message or nothing, and the budget of each block.
 * Oracles: both runs give exactly the same items, streamed bytes and error;
 * a streamed block has one LF per line end of the wire but the last; item lengths
 * match their text; after a failure a reset reader reads the rest as a
 * fresh stream without trouble. */
#include "core/buf.h"
#include "pop3/parse.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct out {
	struct buf log;
	int fail_at; /* the sink fails beyond this many bytes (0: never) */
	size_t got;
	uint64_t hash;
	size_t lfs; /* LFs streamed in the current block */
};

static int f_write(void *ctx, const char *p, size_t n, struct err *e)
{
	struct out *o = ctx;
	if (n == 0)
		abort();
	for (size_t i = 0; i < n; i++) {
		o->lfs += p[i] == '\n';
		o->hash = (o->hash ^ (unsigned char)p[i]) * 1099511628211ull;
	}
	o->got += n;
	if (o->fail_at && o->got > (size_t)o->fail_at)
		return err_set(e, -ENOSPC, ERR_LOCAL, "sink full");
	return 0;
}

static void log_item(struct out *o, const struct pop3_item *it)
{
	if (strlen(it->text) != it->len || !it->code)
		abort();
	buf_printf(&o->log, "%d [%s] %s\n", (int)it->kind, it->code, it->text);
	if (it->kind == POP3_END) {
		buf_printf(&o->log, "body %zu %llx\n", o->got, (unsigned long long)o->hash);
		o->got = 0;
		o->hash = 1469598103934665603ull;
		o->lfs = 0;
	}
}

/* chunk_seed 0: whole. Returns how far the input was consumed. */
static size_t run(const uint8_t *plan, size_t nplan, const uint8_t *p, size_t len,
		  uint32_t chunk_seed, struct out *o, struct pop3_reader **keep)
{
	struct pop3_reader *rd = pop3_reader_new();
	struct pop3_sink sink = { f_write, o };
	size_t pos = 0, step = 0, block = SIZE_MAX;
	uint32_t seed = chunk_seed;
	o->hash = 1469598103934665603ull;
	while (pos < len) {
		size_t n = len - pos;
		if (chunk_seed) {
			seed = seed * 1103515245u + 12345u;
			size_t c = 1 + (seed >> 16) % 29;
			n = n < c ? n : c;
		}
		size_t used, off = 0;
		for (;;) {
			struct pop3_item it;
			enum pop3_res res =
			    pop3_reader_feed(rd, (const char *)p + pos + off, n - off, &used, &it);
			off += used;
			if (res == POP3_FAIL) {
				if (!pop3_reader_err(rd)->msg[0])
					abort();
				buf_printf(&o->log, "FAIL %s\n", pop3_reader_err(rd)->msg);
				goto done;
			}
			if (res == POP3_MORE)
				break;
			if (it.kind == POP3_END && block != SIZE_MAX) {
				size_t lfs = 0;
				for (size_t i = block; i < pos + off; i++)
					lfs += p[i] == '\n';
				if (lfs != o->lfs + 1)
					abort();
				block = SIZE_MAX;
			}
			log_item(o, &it);
			if (it.kind != POP3_OK)
				continue;
			uint8_t choice = nplan ? plan[step++ % nplan] : 0;
			if (choice % 3 == 0)
				continue;
			uint64_t budget = (uint64_t)1 << (choice % 24);
			if (choice % 3 == 2)
				block = pos + off;
			pop3_reader_multi(rd, choice % 3 == 1 ? NULL : &sink, budget);
		}
		if (off != n)
			abort();
		pos += n;
	}
done:
	if (keep)
		*keep = rd;
	else
		pop3_reader_free(&rd);
	return pos;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 3)
		return 0;
	size_t nplan = data[0] % 8;
	uint32_t seed = data[1] + 1u;
	int fail_at = data[2] & 0x80 ? data[2] & 0x7f : 0;
	data += 3;
	size -= 3;
	if (nplan > size)
		nplan = size;
	const uint8_t *plan = data;
	data += nplan;
	size -= nplan;
	struct out whole = { .fail_at = fail_at }, chunked = { .fail_at = fail_at };
	run(plan, nplan, data, size, 0, &whole, NULL);
	run(plan, nplan, data, size, seed, &chunked, NULL);
	if (strcmp(buf_str(&whole.log), buf_str(&chunked.log)) != 0)
		abort();
	struct out more = { .fail_at = fail_at };
	struct pop3_reader *rd;
	size_t pos = run(plan, nplan, data, size, seed, &more, &rd);
	if (pos < size) {
		pop3_reader_reset(rd);
		size_t used, off = pos;
		while (off < size) {
			struct pop3_item it;
			enum pop3_res res =
			    pop3_reader_feed(rd, (const char *)data + off, size - off, &used, &it);
			off += used;
			if (res != POP3_DONE)
				break;
			log_item(&more, &it);
		}
	}
	pop3_reader_free(&rd);
	buf_free(&whole.log);
	buf_free(&chunked.log);
	buf_free(&more.log);
	return 0;
}
