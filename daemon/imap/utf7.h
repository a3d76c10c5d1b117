/* Modified UTF-7 (RFC 3501 section 5.1.3): how mailbox names travel on the
 * wire unless UTF8=ACCEPT is enabled. Both directions are strict, so a name
 * has exactly one encoded form and decode followed by encode gives back the
 * input byte for byte; anything else is an error, never a guess.
 * Pure C: depends on core only. */
#ifndef MF_IMAP_UTF7_H
#define MF_IMAP_UTF7_H

#include "core/buf.h"
#include "core/err.h"

#include <stdbool.h>
#include <stddef.h>

/* Appends the UTF-8 form of the modified UTF-7 name in[0..len) to out.
 * Refused with -EILSEQ (out left as it was, e says what and at which offset):
 * bytes outside printable ASCII, bad or superfluous base64, non-zero padding
 * bits, a missing "-" at the end of a base64 run, a null shift ("-&" followed
 * by base64), printable ASCII or U+0000 written in base64, unpaired UTF-16
 * surrogates. */
int imap_utf7_decode(struct buf *out, const char *in, size_t len, struct err *e);

/* Appends the modified UTF-7 form of the UTF-8 name in[0..len) to out.
 * Refused with -EILSEQ (out left as it was): invalid UTF-8 (overlong forms,
 * surrogates, code points above U+10FFFF, truncated sequences) and NUL. */
int imap_utf7_encode(struct buf *out, const char *in, size_t len, struct err *e);

/* s[0..len) is strict UTF-8 (as imap_utf7_encode wants it) without NUL. */
bool imap_utf8_valid(const char *s, size_t len);

#endif
