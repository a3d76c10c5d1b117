/* A message in the outbox comes from a user or a program: the header
 * parser and the address lists take anything without a crash, and the two
 * views always have the sizes they announce. */
#include "outbox/addr.h"
#include "outbox/message.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	struct addr_list l = { 0 };
	addr_parse_list(&l, text);
	for (size_t i = 0; i < l.n; i++)
		if (!addr_valid(l.v[i]))
			abort();
	addr_list_free(&l);
	free(text);

	char path[] = "/tmp/fuzz-outbox-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);
	struct outbox_msg *m;
	struct err e;
	if (outbox_msg_open(path, &m, &e) == 0) {
		for (int v = OUTBOX_FOR_SMTP; v <= OUTBOX_FOR_SENT; v++) {
			char buf[777];
			uint64_t total = 0;
			ssize_t n;
			outbox_msg_rewind(m);
			while ((n = outbox_msg_read(m, (enum outbox_view)v, buf, sizeof(buf), &e)) > 0)
				total += (uint64_t)n;
			if (n < 0 || total != outbox_msg_size(m, (enum outbox_view)v))
				abort();
		}
		outbox_msg_free(&m);
	}
	unlink(path);
	return 0;
}
