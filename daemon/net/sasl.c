#include "net/sasl.h"

#include "core/base64.h"
#include "core/xalloc.h"

#include <stdlib.h>
#include <string.h>

char *sasl_initial_response(const char *mech, const struct server_conf *sc, const char *secret)
{
	const char *user = sc->user;
	char *raw;
	size_t n;
	if (strcmp(mech, "PLAIN") == 0) {
		raw = xasprintf("%c%s%c%s", 0, user, 0, secret);
		n = 2 + strlen(user) + strlen(secret); /* it starts with NUL */
	} else if (strcmp(mech, "XOAUTH2") == 0) {
		raw = xasprintf("user=%s\001auth=Bearer %s\001\001", user, secret);
		n = strlen(raw);
	} else {
		BUG_ON(strcmp(mech, "OAUTHBEARER") != 0);
		raw = xasprintf("n,a=%s,\001host=%s\001port=%d\001auth=Bearer %s\001\001", user,
				sc->host, sc->port, secret);
		n = strlen(raw);
	}
	char *b64 = base64_encode(raw, n);
	explicit_bzero(raw, n);
	free(raw);
	return b64;
}
