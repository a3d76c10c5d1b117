/* The message flag model shared by the whole sync engine: one bit per flag
 * that both Maildir and IMAP know, and the conversions to and from Maildir
 * info letters (the "DFPRST" after ":2,") and IMAP flag names.
 *
 * Maildir letters we do not model (Dovecot's keyword letters a-z, anything a
 * reader invents) travel beside the bitmask as a string of "unknown" letters,
 * so our renames keep them; IMAP keywords we do not model are ignored here.
 * Pure C: depends on core only. */
#ifndef MF_MAILDIR_FLAGS_H
#define MF_MAILDIR_FLAGS_H

#include "core/buf.h"

#include <stddef.h>

/* Bit values follow the ASCII order of the Maildir letters. */
enum msg_flag {
	FLAG_DRAFT = 1,    /* D  \Draft */
	FLAG_FLAGGED = 2,  /* F  \Flagged */
	FLAG_PASSED = 4,   /* P  $Forwarded */
	FLAG_REPLIED = 8,  /* R  \Answered */
	FLAG_SEEN = 16,    /* S  \Seen */
	FLAG_TRASHED = 32, /* T  \Deleted */
};
#define FLAG_ALL 63u

/* Room for any info string once repeats are dropped: every graphic ASCII
 * character (0x21..0x7e, 94 of them) and the NUL. */
#define FLAGS_INFO_MAX 96

/* Parses Maildir info letters info[0..len) (what follows ":2,"). Known
 * letters set bits in *flags; the others are written to unknown sorted in
 * ASCII order without repeats, NUL-terminated ("" when none). Repeats and any
 * order are accepted. Returns 0, or -EINVAL (outputs unspecified) when a byte
 * is not graphic ASCII. */
int flags_from_maildir(const char *info, size_t len, unsigned *flags, char unknown[FLAGS_INFO_MAX]);

/* Writes the info letters of flags merged with unknown (NULL for none) into
 * out, sorted in ASCII order without repeats, NUL-terminated; returns their
 * number. The bitmask decides the known letters: a known letter or a byte
 * that is not graphic ASCII in unknown is dropped. */
size_t flags_to_maildir(unsigned flags, const char *unknown, char out[FLAGS_INFO_MAX]);

/* The IMAP name of one flag bit ("\\Seen" for FLAG_SEEN); BUG for anything
 * that is not exactly one known bit. */
const char *flags_imap_name(unsigned flag);

/* The bit of the IMAP flag name[0..len), compared case-insensitively, or 0
 * for anything we do not model (\Recent, \*, keywords other than $Forwarded). */
unsigned flags_from_imap_name(const char *name, size_t len);

/* The bits of an IMAP flag list such as "(\Seen $Forwarded Junk)": names
 * separated by spaces, with or without the parentheses; names we do not model
 * are ignored. */
unsigned flags_from_imap_list(const char *list, size_t len);

/* Appends the IMAP flag list of flags to out, in bit order:
 * "(\Flagged \Seen)", "()" when there is none. */
void flags_format_imap(struct buf *out, unsigned flags);

#endif
