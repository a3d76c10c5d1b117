/* Writing strings into IMAP commands: an astring as an atom when that is
 * safe, as a quoted string when it can be, and otherwise the news that a
 * literal is needed (the client sends literals itself). Mailbox names go
 * through modified UTF-7 first unless UTF8=ACCEPT is enabled.
 * Pure C: depends on core only. */
#ifndef MF_IMAP_QUOTE_H
#define MF_IMAP_QUOTE_H

#include "core/buf.h"
#include "core/err.h"

#include <stddef.h>

/* The server takes UTF-8 in quoted strings (RFC 6855 UTF8=ACCEPT enabled). */
#define IMAP_QUOTE_UTF8 1u

enum imap_quote_res {
	IMAP_QUOTE_ATOM,    /* appended as an atom: INBOX, Lists/rust */
	IMAP_QUOTE_QUOTED,  /* appended as a quoted string: "Sent Mail", "" */
	IMAP_QUOTE_LITERAL, /* nothing appended: CR, LF, NUL, or 8-bit without
	                     * IMAP_QUOTE_UTF8; send s as a literal */
};

/* Appends s[0..len) to b as an astring when it can; see the enum. Atoms are
 * used only for printable ASCII without atom-specials, list wildcards, '['
 * or ']', and never for "NIL". */
enum imap_quote_res imap_quote_astring(struct buf *b, const char *s, size_t len, unsigned flags);

/* Appends the UTF-8 mailbox name[0..len) as an astring: modified UTF-7
 * encoded, or as UTF-8 with IMAP_QUOTE_UTF8. Returns 0, or -EILSEQ for
 * invalid UTF-8 or NUL, -EINVAL for CR or LF with IMAP_QUOTE_UTF8 (names
 * like that are refused rather than sent as literals); b is unchanged then. */
int imap_quote_mailbox(struct buf *b, const char *name, size_t len, unsigned flags, struct err *e);

#endif
