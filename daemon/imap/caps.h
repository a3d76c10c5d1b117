/* The server's capabilities that change what mailferry does. Parsed from a
 * CAPABILITY response or response code; anything unknown is ignored.
 * Pure C: depends on core and the response tree only. */
#ifndef MF_IMAP_CAPS_H
#define MF_IMAP_CAPS_H

#include "core/buf.h"
#include "imap/response.h"

#include <stdbool.h>
#include <stdint.h>

enum imap_cap {
	CAP_IMAP4REV1,
	CAP_IMAP4REV2,
	CAP_STARTTLS,
	CAP_LOGINDISABLED,
	CAP_AUTH_PLAIN,
	CAP_AUTH_LOGIN,
	CAP_AUTH_XOAUTH2,
	CAP_AUTH_OAUTHBEARER,
	CAP_SASL_IR,
	CAP_ENABLE,
	CAP_IDLE,
	CAP_NOTIFY,
	CAP_CONDSTORE,
	CAP_QRESYNC,
	CAP_UIDPLUS,
	CAP_MOVE,
	CAP_SPECIAL_USE,
	CAP_LIST_EXTENDED,
	CAP_LIST_STATUS,
	CAP_LITERAL_PLUS,
	CAP_LITERAL_MINUS,
	CAP_COMPRESS_DEFLATE,
	CAP_ESEARCH,
	CAP_UNSELECT,
	CAP_NAMESPACE,
	CAP_UTF8_ACCEPT,
	CAP_BINARY,
	CAP_ID,
	CAP__COUNT
};

struct imap_caps {
	uint64_t bits;
};

/* Replaces caps with the atoms in vals[0..n) (non-atoms are skipped). */
void imap_caps_parse(struct imap_caps *caps, const struct imap_value *vals, size_t n);
bool imap_caps_has(const struct imap_caps *caps, enum imap_cap cap);
/* The capability's name as servers write it: "QRESYNC", "AUTH=PLAIN". */
const char *imap_cap_name(enum imap_cap cap);
/* Appends the names of the capabilities held, space-separated. */
void imap_caps_format(struct buf *b, const struct imap_caps *caps);

#endif
