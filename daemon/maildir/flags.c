#include "maildir/flags.h"

#include "core/xalloc.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

/* Indexed by bit number: letters in ASCII order, so bit order is letter order. */
static const char letters[] = "DFPRST";
static const char *const imap_names[] = {
	"\\Draft", "\\Flagged", "$Forwarded", "\\Answered", "\\Seen", "\\Deleted",
};

static bool graphic(unsigned char c)
{
	return c > 0x20 && c < 0x7f;
}

static unsigned letter_bit(unsigned char c)
{
	for (unsigned i = 0; letters[i]; i++)
		if (letters[i] == c)
			return 1u << i;
	return 0;
}

/* Writes the letters marked in present[] in ASCII order; returns how many. */
static size_t emit_sorted(const bool present[128], char out[FLAGS_INFO_MAX])
{
	size_t n = 0;
	for (unsigned c = 0x21; c < 0x7f; c++)
		if (present[c])
			out[n++] = (char)c;
	out[n] = '\0';
	return n;
}

int flags_from_maildir(const char *info, size_t len, unsigned *flags, char unknown[FLAGS_INFO_MAX])
{
	bool present[128] = { false };
	unsigned bits = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)info[i];
		if (!graphic(c))
			return -EINVAL;
		unsigned bit = letter_bit(c);
		if (bit)
			bits |= bit;
		else
			present[c] = true;
	}
	*flags = bits;
	emit_sorted(present, unknown);
	return 0;
}

size_t flags_to_maildir(unsigned flags, const char *unknown, char out[FLAGS_INFO_MAX])
{
	bool present[128] = { false };
	for (unsigned i = 0; letters[i]; i++)
		if (flags & (1u << i))
			present[(unsigned char)letters[i]] = true;
	for (const char *p = unknown; p && *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (graphic(c) && !letter_bit(c))
			present[c] = true;
	}
	return emit_sorted(present, out);
}

const char *flags_imap_name(unsigned flag)
{
	for (unsigned i = 0; i < ARRAY_SIZE(imap_names); i++)
		if (flag == 1u << i)
			return imap_names[i];
	BUG("not a single flag bit: %#x", flag);
}

unsigned flags_from_imap_name(const char *name, size_t len)
{
	for (unsigned i = 0; i < ARRAY_SIZE(imap_names); i++)
		if (strlen(imap_names[i]) == len && strncasecmp(imap_names[i], name, len) == 0)
			return 1u << i;
	return 0;
}

unsigned flags_from_imap_list(const char *list, size_t len)
{
	unsigned bits = 0;
	size_t i = 0;
	while (i < len) {
		while (i < len && (list[i] == ' ' || list[i] == '(' || list[i] == ')'))
			i++;
		size_t start = i;
		while (i < len && list[i] != ' ' && list[i] != '(' && list[i] != ')')
			i++;
		bits |= flags_from_imap_name(list + start, i - start);
	}
	return bits;
}

void flags_format_imap(struct buf *out, unsigned flags)
{
	buf_putc(out, '(');
	const char *sep = "";
	for (unsigned i = 0; i < ARRAY_SIZE(imap_names); i++) {
		if (flags & (1u << i)) {
			buf_puts(out, sep);
			buf_puts(out, imap_names[i]);
			sep = " ";
		}
	}
	buf_putc(out, ')');
}
