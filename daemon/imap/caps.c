#include "imap/caps.h"

#include <strings.h>

static const char *const names[CAP__COUNT] = {
	[CAP_IMAP4REV1] = "IMAP4rev1",
	[CAP_IMAP4REV2] = "IMAP4rev2",
	[CAP_STARTTLS] = "STARTTLS",
	[CAP_LOGINDISABLED] = "LOGINDISABLED",
	[CAP_AUTH_PLAIN] = "AUTH=PLAIN",
	[CAP_AUTH_LOGIN] = "AUTH=LOGIN",
	[CAP_AUTH_XOAUTH2] = "AUTH=XOAUTH2",
	[CAP_AUTH_OAUTHBEARER] = "AUTH=OAUTHBEARER",
	[CAP_SASL_IR] = "SASL-IR",
	[CAP_ENABLE] = "ENABLE",
	[CAP_IDLE] = "IDLE",
	[CAP_NOTIFY] = "NOTIFY",
	[CAP_CONDSTORE] = "CONDSTORE",
	[CAP_QRESYNC] = "QRESYNC",
	[CAP_UIDPLUS] = "UIDPLUS",
	[CAP_MOVE] = "MOVE",
	[CAP_SPECIAL_USE] = "SPECIAL-USE",
	[CAP_LIST_EXTENDED] = "LIST-EXTENDED",
	[CAP_LIST_STATUS] = "LIST-STATUS",
	[CAP_LITERAL_PLUS] = "LITERAL+",
	[CAP_LITERAL_MINUS] = "LITERAL-",
	[CAP_COMPRESS_DEFLATE] = "COMPRESS=DEFLATE",
	[CAP_ESEARCH] = "ESEARCH",
	[CAP_UNSELECT] = "UNSELECT",
	[CAP_NAMESPACE] = "NAMESPACE",
	[CAP_UTF8_ACCEPT] = "UTF8=ACCEPT",
	[CAP_BINARY] = "BINARY",
	[CAP_ID] = "ID",
};

void imap_caps_parse(struct imap_caps *caps, const struct imap_value *vals, size_t n)
{
	caps->bits = 0;
	for (size_t i = 0; i < n; i++) {
		const char *atom = imap_value_atom(&vals[i]);
		if (!atom)
			continue;
		for (int c = 0; c < CAP__COUNT; c++)
			if (strcasecmp(atom, names[c]) == 0)
				caps->bits |= UINT64_C(1) << c;
	}
	/* RFC 7162 section 3.2.3: QRESYNC implies CONDSTORE. */
	if (imap_caps_has(caps, CAP_QRESYNC))
		caps->bits |= UINT64_C(1) << CAP_CONDSTORE;
}

bool imap_caps_has(const struct imap_caps *caps, enum imap_cap cap)
{
	return caps->bits & (UINT64_C(1) << cap);
}

const char *imap_cap_name(enum imap_cap cap)
{
	return names[cap];
}

void imap_caps_format(struct buf *b, const struct imap_caps *caps)
{
	bool first = true;
	for (int c = 0; c < CAP__COUNT; c++) {
		if (!imap_caps_has(caps, (enum imap_cap)c))
			continue;
		if (!first)
			buf_putc(b, ' ');
		buf_puts(b, names[c]);
		first = false;
	}
}
