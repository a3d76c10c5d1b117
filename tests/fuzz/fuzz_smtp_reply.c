/* The SMTP reply parser on arbitrary bytes, fed in pieces whose sizes come
 * from the input: never a crash, never more memory than its limits, and the
 * same answer as when fed whole. */
#include "smtp/reply.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run(const uint8_t *data, size_t size, size_t step, int *codes, int max)
{
	struct smtp_reply r = { 0 };
	int n = 0;
	size_t off = 0;
	while (off < size && n < max) {
		size_t len = step && size - off > step ? step : size - off, used;
		enum smtp_parse res = smtp_reply_feed(&r, (const char *)data + off, len, &used);
		off += used;
		if (res == SMTP_BAD) {
			codes[n++] = -1;
			break;
		}
		if (res == SMTP_DONE) {
			codes[n++] = r.code;
			smtp_reply_reset(&r);
		} else if (used < len) {
			abort(); /* MORE must consume everything it was given */
		}
	}
	smtp_reply_free(&r);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int whole[64], split[64];
	size_t step = size ? (size_t)data[0] % 7 + 1 : 1;
	int a = run(data, size, 0, whole, 64), b = run(data, size, step, split, 64);
	if (a != b || memcmp(whole, split, (size_t)a * sizeof(int)) != 0)
		abort();
	return 0;
}
