/* SASL client responses (RFC 4422) that the IMAP, POP3 and SMTP logins share.
 * Pure: no loop, no connection. */
#ifndef MF_NET_SASL_H
#define MF_NET_SASL_H

#include "config/config.h"

/* The initial response of mech for sc's user and the secret, base64-encoded:
 * "PLAIN" (RFC 4616), "XOAUTH2" (Google's), "OAUTHBEARER" (RFC 7628, which
 * names sc's host and port too). The caller wipes it (explicit_bzero) and
 * frees it. */
char *sasl_initial_response(const char *mech, const struct server_conf *sc, const char *secret);

#endif
