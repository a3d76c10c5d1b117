/* Opening a POP3 session: greeting, CAPA, STLS, authentication, CAPA again.
 * Each step is a command whose callback calls next_step, which looks at
 * what is known and sends what is still missing. */
#include "pop3/client_priv.h"

#include "core/log.h"
#include "core/xalloc.h"
#include "net/sasl.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The most a CAPA answer may take on the wire. */
#define CAPA_BUDGET (64 * 1024)
/* RFC 5034 section 4: an AUTH command with its initial response longer than
 * this is sent without it, and the response goes after the server's "+". */
#define AUTH_LINE_MAX 255

static void next_step(struct pop3_client *c);

/* Common head of every step's callback: false when the step failed and the
 * open sequence is over. A refusal's class comes from its response code,
 * else it is cls. */
static bool step_ok(struct pop3_client *c, const struct pop3_reply *reply, enum err_class cls,
		    const char *what)
{
	if (reply->status == POP3_STATUS_OK)
		return true;
	if (reply->status == POP3_STATUS_ERR)
		pop3_cl_open_failed(c, pop3_cl_code_class(reply->code, cls), "%s: -ERR %s%s%s%s",
				    what, reply->code[0] ? "[" : "", reply->code,
				    reply->code[0] ? "] " : "", reply->text);
	/* NONE: the connection failed, and the open sequence with it. */
	return false;
}

/* ---- capabilities ---- */

static const struct {
	const char *name;
	enum pop3_cap cap;
} cap_names[] = {
	{ "TOP", POP3_CAP_TOP },
	{ "USER", POP3_CAP_USER },
	{ "UIDL", POP3_CAP_UIDL },
	{ "PIPELINING", POP3_CAP_PIPELINING },
	{ "RESP-CODES", POP3_CAP_RESP_CODES },
	{ "STLS", POP3_CAP_STLS },
};

static const struct {
	const char *name;
	enum pop3_cap cap;
} sasl_names[] = {
	{ "PLAIN", POP3_CAP_SASL_PLAIN },
	{ "LOGIN", POP3_CAP_SASL_LOGIN },
	{ "XOAUTH2", POP3_CAP_SASL_XOAUTH2 },
	{ "OAUTHBEARER", POP3_CAP_SASL_OAUTHBEARER },
};

static void sasl_mechanisms(struct pop3_client *c, const char *list)
{
	char *copy = xstrdup(list), *save = NULL;
	for (char *m = strtok_r(copy, " ", &save); m; m = strtok_r(NULL, " ", &save))
		for (size_t i = 0; i < ARRAY_SIZE(sasl_names); i++)
			if (strcasecmp(m, sasl_names[i].name) == 0)
				c->caps[sasl_names[i].cap] = true;
	free(copy);
}

static int on_capa_line(void *ctx, const char *line, size_t len, struct err *e)
{
	struct pop3_client *c = ctx;
	(void)e;
	size_t word = strcspn(line, " ");
	if (word == 4 && strncasecmp(line, "SASL", 4) == 0)
		sasl_mechanisms(c, line + 4);
	for (size_t i = 0; i < ARRAY_SIZE(cap_names); i++)
		if (strlen(cap_names[i].name) == word &&
		    strncasecmp(line, cap_names[i].name, word) == 0)
			c->caps[cap_names[i].cap] = true;
	if (c->caps_text.len)
		buf_puts(&c->caps_text, ", ");
	buf_append(&c->caps_text, line, len);
	return 0;
}

static void on_capa(void *ctx, const struct pop3_reply *reply)
{
	struct pop3_client *c = ctx;
	if (reply->status == POP3_STATUS_NONE)
		return;
	/* -ERR: an RFC 1939 server without CAPA; it may still have USER, UIDL
	 * and TOP, which trying will tell. */
	c->caps_known = reply->status == POP3_STATUS_OK;
	c->capa_done = true;
	next_step(c);
}

static void ask_capa(struct pop3_client *c)
{
	memset(c->caps, 0, sizeof(c->caps));
	c->caps[POP3_CAP_APOP] = c->apop_stamp != NULL;
	c->caps_known = false;
	buf_reset(&c->caps_text);
	struct pop3_cmd_opts o = { .multi = true, .max_bytes = CAPA_BUDGET, .line = on_capa_line };
	pop3_cl_send_login(c, &o, NULL, on_capa, "CAPA");
}

/* ---- STLS ---- */

static void on_tls_up(void *ctx, int status, const struct err *err)
{
	struct pop3_client *c = ctx;
	c->upgrading = false;
	if (status < 0) {
		pop3_cl_fail(c, err);
		return;
	}
	c->tls_done = true;
	c->capa_done = false; /* RFC 2595 section 4: forget what was said in plaintext */
	next_step(c);
}

static void on_stls(void *ctx, const struct pop3_reply *reply)
{
	struct pop3_client *c = ctx;
	if (!step_ok(c, reply, ERR_PERM, "STLS refused"))
		return;
	c->upgrading = true;
	conn_start_tls(c->conn, on_tls_up);
}

/* ---- authentication ---- */

static void on_authenticated(void *ctx, const struct pop3_reply *reply)
{
	struct pop3_client *c = ctx;
	/* Without a response code, a refusal here means the credentials. */
	if (!step_ok(c, reply, ERR_AUTH, "authentication failed"))
		return;
	c->authenticated = true;
	log_debug("account=%s server=%s event=authenticated method=\"%s\"", c->account,
		  conn_name(c->conn), c->method);
	next_step(c);
}

/* The first "+" asks for the initial response when it did not fit the AUTH
 * line. A later one is a failure report (XOAUTH2, OAUTHBEARER), answered as
 * each mechanism asks so the server ends with -ERR: an empty line for
 * XOAUTH2, a lone 0x01 for OAUTHBEARER (RFC 7628 section 3.2.3); PLAIN has
 * nothing more to say and cancels. */
static char *on_auth_continue(void *ctx, const char *challenge)
{
	struct pop3_client *c = ctx;
	(void)challenge;
	if (c->sasl_step++ == 0)
		return sasl_initial_response(c->mech, c->sc, c->secret);
	if (strcmp(c->mech, "XOAUTH2") == 0)
		return xstrdup("");
	return xstrdup(strcmp(c->mech, "OAUTHBEARER") == 0 ? "AQ==" : "*");
}

static void auth_sasl(struct pop3_client *c)
{
	struct pop3_cmd_opts o = { .secret = true };
	char *ir = sasl_initial_response(c->mech, c->sc, c->secret);
	if (strlen("AUTH  \r\n") + strlen(c->mech) + strlen(ir) <= AUTH_LINE_MAX) {
		c->sasl_step = 1;
		pop3_cl_send_login(c, &o, on_auth_continue, on_authenticated, "AUTH %s %s", c->mech,
				   ir);
	} else {
		c->sasl_step = 0;
		pop3_cl_send_login(c, &o, on_auth_continue, on_authenticated, "AUTH %s", c->mech);
	}
	explicit_bzero(ir, strlen(ir));
	free(ir);
}

static void on_user(void *ctx, const struct pop3_reply *reply)
{
	struct pop3_client *c = ctx;
	if (!step_ok(c, reply, ERR_AUTH, "authentication failed"))
		return;
	struct pop3_cmd_opts o = { .secret = true };
	pop3_cl_send_login(c, &o, NULL, on_authenticated, "PASS %s", c->secret);
}

/* RFC 1939 section 7: the MD5 of the greeting's timestamp and the secret. */
static void auth_apop(struct pop3_client *c)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned len = 0;
	char *text = xasprintf("%s%s", c->apop_stamp, c->secret);
	int ok = EVP_Digest(text, strlen(text), md, &len, EVP_md5(), NULL);
	explicit_bzero(text, strlen(text));
	free(text);
	if (!ok) {
		pop3_cl_open_failed(c, ERR_LOCAL, "APOP: MD5 is not available in this OpenSSL");
		return;
	}
	char hex[2 * EVP_MAX_MD_SIZE + 1];
	for (unsigned i = 0; i < len; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	struct pop3_cmd_opts o = { .secret = true };
	pop3_cl_send_login(c, &o, NULL, on_authenticated, "APOP %s %s", c->sc->user, hex);
	explicit_bzero(hex, sizeof(hex));
}

/* Which way to log in, from the config and what the server offers. Over
 * plaintext (loopback, or allowed in writing) APOP keeps the password off
 * the wire, so "auto" prefers it there; over TLS, SASL PLAIN, then USER. */
static const char *choose_method(struct pop3_client *c)
{
	bool unknown = !c->caps_known;
	bool plain = c->caps[POP3_CAP_SASL_PLAIN], user = c->caps[POP3_CAP_USER] || unknown;
	bool apop = c->apop_stamp != NULL;
	switch (c->sc->auth) {
	case AUTH_AUTO:
		if (apop && !conn_is_tls(c->conn))
			return "APOP";
		return plain ? "AUTH PLAIN" : user ? "USER" : apop ? "APOP" : NULL;
	case AUTH_PLAIN:
		return plain || unknown ? "AUTH PLAIN" : NULL;
	case AUTH_LOGIN:
		return user ? "USER" : NULL;
	case AUTH_XOAUTH2:
		return c->caps[POP3_CAP_SASL_XOAUTH2] || unknown ? "AUTH XOAUTH2" : NULL;
	case AUTH_OAUTHBEARER:
		return c->caps[POP3_CAP_SASL_OAUTHBEARER] || unknown ? "AUTH OAUTHBEARER" : NULL;
	}
	return NULL;
}

static void authenticate(struct pop3_client *c)
{
	static const char *const auth_names[] = { "auto", "plain", "login", "xoauth2",
						  "oauthbearer" };
	if (!c->secret) {
		pop3_cl_open_failed(c, ERR_CONFIG, "no password to log in with");
		return;
	}
	c->method = choose_method(c);
	if (!c->method) {
		pop3_cl_open_failed(c, ERR_PERM,
				    "the server offers no login method allowed by auth = \"%s\"",
				    auth_names[c->sc->auth]);
		return;
	}
	if (strncmp(c->method, "AUTH ", 5) == 0) {
		c->mech = c->method + 5;
		auth_sasl(c);
	} else if (strcmp(c->method, "APOP") == 0) {
		auth_apop(c);
	} else {
		pop3_cl_send_login(c, NULL, NULL, on_user, "USER %s", c->sc->user);
	}
}

static void next_step(struct pop3_client *c)
{
	if (!c->capa_done) {
		ask_capa(c);
	} else if (c->sc->tls == TLS_STARTTLS && !c->tls_done) {
		if (c->caps_known && !c->caps[POP3_CAP_STLS]) {
			pop3_cl_open_failed(c, ERR_PERM,
					    "the server does not offer STLS (tls = \"starttls\")");
			return;
		}
		pop3_cl_send_login(c, NULL, NULL, on_stls, "STLS");
	} else if (!c->authenticated) {
		authenticate(c);
	} else if (c->caps_known && !c->capa_after_login) {
		/* RFC 2449 section 5: capabilities may change with login. */
		c->capa_after_login = true;
		c->capa_done = false;
		next_step(c);
	} else {
		struct pop3_reply ok = { .status = POP3_STATUS_OK, .code = "", .text = "" };
		pop3_cl_open_finished(c, &ok);
	}
}

/* The APOP timestamp, RFC 1939 section 7: a msg-id such as <1896.69@host>
 * somewhere in the greeting. */
static char *apop_stamp(const char *text)
{
	const char *lt = strchr(text, '<');
	const char *gt = lt ? strchr(lt, '>') : NULL;
	if (!gt || gt - lt < 3 || !memchr(lt, '@', (size_t)(gt - lt)) ||
	    memchr(lt, ' ', (size_t)(gt - lt)))
		return NULL;
	return xasprintf("%.*s", (int)(gt - lt + 1), lt);
}

void pop3_login_greeting(struct pop3_client *c, const struct pop3_item *it)
{
	if (it->kind != POP3_OK) {
		pop3_cl_open_failed(c, pop3_cl_code_class(it->code, ERR_TEMP),
				    "the server refused the connection: %s%s%s%s%s",
				    it->kind == POP3_ERR ? "-ERR " : "+ ", it->code[0] ? "[" : "",
				    it->code, it->code[0] ? "] " : "", it->text);
		return;
	}
	c->state = CL_LOGIN;
	c->apop_stamp = apop_stamp(it->text);
	next_step(c);
}
