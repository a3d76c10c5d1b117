/* A message in the outbox: its envelope and what is sent of it.
 *
 * `mailferryctl sendmail` writes the envelope as the first header fields of
 * the file, which never leave the machine:
 *     X-Mailferry-Envelope-From: <me@example.org>
 *     X-Mailferry-Envelope-To: <you@example.org>      (one field per recipient)
 * (and X-Mailferry-Envelope-Headers: yes when To, Cc and Bcc count too, as
 * with sendmail -t). A file put into the outbox by other means (a reader's
 * postponed message, a script) has none: the sender is its From, the
 * recipients its To, Cc and Bcc. What goes over SMTP is the file without the envelope fields and
 * without Bcc (RFC 5322 section 3.6.3: blind recipients are not shown); the
 * copy for the Sent folder keeps Bcc. Bounded memory whatever the size. */
#ifndef MF_OUTBOX_MESSAGE_H
#define MF_OUTBOX_MESSAGE_H

#include "core/err.h"
#include "outbox/addr.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define OUTBOX_ENV_FROM "X-Mailferry-Envelope-From"
#define OUTBOX_ENV_TO "X-Mailferry-Envelope-To"
/* "yes": To, Cc and Bcc are recipients too (sendmail -t with arguments). */
#define OUTBOX_ENV_HEADERS "X-Mailferry-Envelope-Headers"

enum outbox_view { OUTBOX_FOR_SMTP, OUTBOX_FOR_SENT };

struct outbox_msg;

/* Opens and reads the header of the file at path. Returns 0, or -EINVAL
 * with e saying why the message cannot be sent (no header, a line that is
 * not a header field, no From, no recipient), or another negative errno. */
int outbox_msg_open(const char *path, struct outbox_msg **out, struct err *e);
void outbox_msg_free(struct outbox_msg **mp);

const char *outbox_msg_from(const struct outbox_msg *m);
const struct addr_list *outbox_msg_rcpts(const struct outbox_msg *m);
const char *outbox_msg_id(const struct outbox_msg *m); /* Message-ID, or "" */
const char *outbox_msg_subject(const struct outbox_msg *m); /* as written (unfolded), or "" */
bool outbox_msg_eight_bit(const struct outbox_msg *m);
bool outbox_msg_utf8_addresses(const struct outbox_msg *m);
/* The size of a view (bytes as stored, line ends untouched). */
uint64_t outbox_msg_size(const struct outbox_msg *m, enum outbox_view view);
/* Reads the next bytes of a view; 0 at the end. outbox_msg_rewind starts over. */
ssize_t outbox_msg_read(struct outbox_msg *m, enum outbox_view view, char *buf, size_t len,
			struct err *e);
void outbox_msg_rewind(struct outbox_msg *m);

#endif
