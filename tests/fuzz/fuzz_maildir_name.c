/* Maildir file names, folder path mapping and the message digest. The first
 * input byte picks the layout and the server's hierarchy delimiter; the rest
 * is the name. Oracles:
 *   - a file name that parses rebuilds (in new/ and cur/) into a name that
 *     parses to the same base, flags and unknown letters;
 *   - a server name that maps gives a local path that is safe (not absolute,
 *     no "", "." or ".." component, no control byte, no Maildir dir in
 *     verbatim layout) and maps back to the name (INBOX in any case to
 *     "INBOX");
 *   - a local path that maps to a server name is exactly the path that name
 *     maps to (the local form is unique);
 *   - the digest of the input is the same fed whole or in two pieces. */
#include "core/buf.h"
#include "core/xalloc.h"
#include "maildir/digest.h"
#include "maildir/name.h"
#include "maildir/path.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void check_name(const char *s)
{
	struct maildir_name nm, again;
	if (maildir_name_parse(s, &nm) != 0)
		return;
	for (int in_new = 0; in_new < 2; in_new++) {
		char *b = maildir_name_build(nm.base, nm.base_len, nm.flags, nm.unknown, in_new);
		if (strlen(b) <= NAME_MAX) {
			if (maildir_name_parse(b, &again) != 0 || again.base_len != nm.base_len ||
			    memcmp(again.base, nm.base, nm.base_len) != 0 ||
			    again.flags != nm.flags || strcmp(again.unknown, nm.unknown) != 0)
				abort();
		}
		free(b);
	}
}

static bool safe_component(enum maildir_layout layout, const char *c, size_t n)
{
	if (n == 0 || (c[0] == '.' && (n == 1 || (n == 2 && c[1] == '.'))))
		return false;
	if (layout == MAILDIR_LAYOUT_VERBATIM && n == 3 &&
	    (!memcmp(c, "new", 3) || !memcmp(c, "cur", 3) || !memcmp(c, "tmp", 3)))
		return false;
	return true;
}

static void check_safe(enum maildir_layout layout, const struct buf *rel)
{
	const char *s = buf_str(rel);
	if (strlen(s) != rel->len || s[0] == '/')
		abort();
	for (size_t i = 0; i < rel->len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			abort();
	if (layout == MAILDIR_LAYOUT_PLUSPLUS) {
		if (rel->len &&
		    (s[0] != '.' || strchr(s, '/') || !safe_component(layout, s, rel->len)))
			abort();
		return;
	}
	for (;;) {
		size_t n = strcspn(s, "/");
		if (!safe_component(layout, s, n))
			abort();
		if (!s[n])
			return;
		s += n + 1;
	}
}

static void check_forward(enum maildir_layout layout, const char *p, size_t n, char delim)
{
	struct buf rel = {0}, back = {0};
	if (maildir_path_from_server(&rel, layout, p, n, delim, NULL) == 0) {
		check_safe(layout, &rel);
		if (maildir_path_to_server(&back, layout, buf_str(&rel), delim, NULL) != 0)
			abort();
		bool inbox = n == 5 && strncasecmp(p, "INBOX", 5) == 0;
		const char *want = inbox ? "INBOX" : p;
		size_t want_len = inbox ? 5 : n;
		if (back.len != want_len || memcmp(buf_str(&back), want, want_len) != 0)
			abort();
	}
	buf_free(&rel);
	buf_free(&back);
}

static void check_reverse(enum maildir_layout layout, const char *s, char delim)
{
	struct buf name = {0}, rel = {0};
	if (maildir_path_to_server(&name, layout, s, delim, NULL) == 0) {
		if (maildir_path_from_server(&rel, layout, buf_str(&name), name.len, delim, NULL) !=
		        0 ||
		    strcmp(buf_str(&rel), s) != 0)
			abort();
	}
	buf_free(&name);
	buf_free(&rel);
}

static void check_digest(const uint8_t *p, size_t n, size_t split)
{
	struct maildir_ident a, b;
	struct maildir_digest *d = maildir_digest_new();
	maildir_digest_feed(d, p, n);
	maildir_digest_end(d, &a);
	maildir_digest_free(&d);
	d = maildir_digest_new();
	maildir_digest_feed(d, p, split);
	maildir_digest_feed(d, p + split, n - split);
	maildir_digest_end(d, &b);
	maildir_digest_free(&d);
	if (strcmp(a.message_id, b.message_id) != 0 ||
	    memcmp(a.body_hash, b.body_hash, MAILDIR_HASH_LEN) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char delims[] = {'/', '.', 0, '\\', '%'};
	if (size < 1)
		return 0;
	enum maildir_layout layout =
	    data[0] & 1 ? MAILDIR_LAYOUT_PLUSPLUS : MAILDIR_LAYOUT_VERBATIM;
	char delim = delims[(data[0] >> 1) % sizeof(delims)];
	const char *p = (const char *)data + 1;
	size_t n = size - 1;
	char *s = xstrndup(p, n); /* up to the first NUL: file and path names hold none */
	check_name(s);
	check_forward(layout, p, n, delim);
	check_reverse(layout, s, delim);
	check_digest(data + 1, n, n ? data[0] % (n + 1) : 0);
	free(s);
	return 0;
}
