/* IMAP dates (RFC 3501 date-time): "17-Jul-1996 02:44:25 -0700", as in
 * INTERNALDATE and the date argument of APPEND. Pure C. */
#ifndef MF_IMAP_DATE_H
#define MF_IMAP_DATE_H

#include "core/buf.h"

#include <stdbool.h>
#include <time.h>

/* Parses s into seconds since the epoch (UTC). The day may have a leading
 * space instead of a digit ("date-day-fixed"). false when s is not a date-time. */
bool imap_date_parse(const char *s, time_t *out);
/* Appends t as a quoted date-time in UTC: "\"17-Jul-1996 09:44:25 +0000\"". */
void imap_date_format(struct buf *b, time_t t);

#endif
