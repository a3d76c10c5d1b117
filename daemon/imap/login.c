/* Opening a connection: greeting, STARTTLS, capabilities, authentication,
 * ENABLE. Each step is a command whose callback calls next_step, which looks
 * at what is known and sends what is still missing. */
#include "imap/client_priv.h"

#include "core/base64.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "net/sasl.h"

#include <stdio.h>
#include <string.h>

static void next_step(struct imap_client *c);

/* The tagged text of a refusal, without its tag. */
static const char *refusal(const struct imap_reply *reply)
{
	const char *line = imap_response_line(reply->tagged);
	const char *rest = strchr(line, ' ');
	return rest ? rest + 1 : line;
}

/* Common head of every step's callback: false when the step failed and the
 * open sequence is over. */
static bool step_ok(struct imap_client *c, const struct imap_reply *reply, enum err_class cls,
		    const char *what)
{
	if (reply->status == IMAP_STATUS_OK)
		return true;
	if (reply->status == IMAP_STATUS_NONE)
		client_fail(c, &reply->err);
	else
		client_open_failed(c, cls, "%s: %s", what, refusal(reply));
	return false;
}

static void on_step_done(void *ctx, const struct imap_reply *reply)
{
	struct imap_client *c = ctx;
	if (step_ok(c, reply, ERR_PERM, "login sequence failed"))
		next_step(c);
}

static void on_tls_up(void *ctx, int status, const struct err *err)
{
	struct imap_client *c = ctx;
	if (status < 0) {
		client_fail(c, err);
		return;
	}
	c->tls_done = true;
	c->caps_fresh = false; /* RFC 3501 6.2.1: forget what was said in plaintext */
	c->caps.bits = 0;
	next_step(c);
}

static void on_starttls(void *ctx, const struct imap_reply *reply)
{
	struct imap_client *c = ctx;
	if (step_ok(c, reply, ERR_PERM, "STARTTLS refused"))
		conn_start_tls(c->conn, on_tls_up);
}

/* Without SASL-IR the first "+" asks for the initial response (net/sasl.h).
 * AUTH=LOGIN asks for the user, then the password. Any later "+" is the
 * server's error report (XOAUTH2, OAUTHBEARER), answered empty so it
 * completes with NO. */
static char *on_auth_continue(void *ctx, const struct imap_response *r)
{
	struct imap_client *c = ctx;
	(void)r;
	unsigned step = c->sasl_step++;
	if (strcmp(c->auth_mech, "LOGIN") == 0 && step < 2) {
		const char *s = step == 0 ? c->sc->user : c->secret;
		return base64_encode(s, strlen(s));
	}
	return step == 0 ? sasl_initial_response(c->auth_mech, c->sc, c->secret) : xstrdup("");
}

static void on_authenticated(void *ctx, const struct imap_reply *reply)
{
	struct imap_client *c = ctx;
	/* A login refused for a temporary reason (too many connections, a
	 * throttle) says nothing about the credentials. */
	enum err_class cls = reply->err.cls == ERR_TEMP ? ERR_TEMP : ERR_AUTH;
	if (!step_ok(c, reply, cls,
		     cls == ERR_TEMP ? "login refused for now" : "authentication failed"))
		return;
	c->authenticated = true;
	client_after_login(c);
	log_debug("account=%s server=%s event=authenticated mechanism=%s", c->account,
		  conn_name(c->conn), c->auth_mech ? c->auth_mech : "LOGIN-command");
	next_step(c);
}

/* Which way to log in, from the config and what the server offers. */
static int choose_auth(struct imap_client *c)
{
	bool login_ok = !imap_client_has(c, CAP_LOGINDISABLED);
	switch (c->sc->auth) {
	case AUTH_AUTO:
		if (imap_client_has(c, CAP_AUTH_PLAIN))
			c->auth_mech = "PLAIN";
		else if (!login_ok && imap_client_has(c, CAP_AUTH_LOGIN))
			c->auth_mech = "LOGIN";
		else if (!login_ok)
			return -1;
		return 0;
	case AUTH_PLAIN:
		c->auth_mech = "PLAIN";
		return imap_client_has(c, CAP_AUTH_PLAIN) ? 0 : -1;
	case AUTH_LOGIN:
		return login_ok ? 0 : -1;
	case AUTH_XOAUTH2:
		c->auth_mech = "XOAUTH2";
		return imap_client_has(c, CAP_AUTH_XOAUTH2) ? 0 : -1;
	case AUTH_OAUTHBEARER:
		c->auth_mech = "OAUTHBEARER";
		return imap_client_has(c, CAP_AUTH_OAUTHBEARER) ? 0 : -1;
	}
	return -1;
}

static void authenticate(struct imap_client *c)
{
	if (!c->secret) {
		client_open_failed(c, ERR_CONFIG, "no password to log in with");
		return;
	}
	if (choose_auth(c) < 0) {
		client_open_failed(c, ERR_PERM,
				   "the server offers no login method allowed by auth = \"%s\"%s",
				   c->sc->auth == AUTH_AUTO ? "auto" : c->auth_mech ? c->auth_mech : "login",
				   imap_client_has(c, CAP_LOGINDISABLED) && !c->tls_done &&
						   c->sc->tls == TLS_NONE
					   ? " (it disables LOGIN without TLS)"
					   : "");
		return;
	}
	struct imap_cmd *cmd;
	if (!c->auth_mech) {
		cmd = imap_cmd_new(c, "LOGIN");
		imap_cmd_astring(cmd, c->sc->user);
		imap_cmd_astring(cmd, c->secret);
	} else if (imap_client_has(c, CAP_SASL_IR) && strcmp(c->auth_mech, "LOGIN") != 0) {
		char *ir = sasl_initial_response(c->auth_mech, c->sc, c->secret);
		cmd = imap_cmd_new(c, "AUTHENTICATE %s %s", c->auth_mech, ir);
		explicit_bzero(ir, strlen(ir));
		free(ir);
		c->sasl_step = 1;
		imap_cmd_continue(cmd, on_auth_continue);
	} else {
		cmd = imap_cmd_new(c, "AUTHENTICATE %s", c->auth_mech);
		imap_cmd_continue(cmd, on_auth_continue);
	}
	imap_cmd_secret(cmd);
	imap_cmd_send(cmd, on_authenticated, c);
}

static void on_enabled(void *ctx, struct imap_response *r)
{
	struct imap_client *c = ctx;
	for (size_t i = 0; i < r->nargs; i++) {
		if (imap_value_atom_eq(&r->args[i], "QRESYNC"))
			c->qresync = c->condstore = true;
		if (imap_value_atom_eq(&r->args[i], "CONDSTORE"))
			c->condstore = true;
	}
}

static void enable(struct imap_client *c)
{
	c->enabled = true;
	const char *what = imap_client_has(c, CAP_QRESYNC)	   ? "QRESYNC"
			   : imap_client_has(c, CAP_CONDSTORE) ? "CONDSTORE"
							       : NULL;
	if (!what || !imap_client_has(c, CAP_ENABLE)) {
		next_step(c);
		return;
	}
	struct imap_cmd *cmd = imap_cmd_new(c, "ENABLE %s", what);
	imap_cmd_claim(cmd, "ENABLED", on_enabled);
	imap_cmd_send(cmd, on_step_done, c);
}

static void next_step(struct imap_client *c)
{
	if (!c->caps_fresh) {
		imap_cmd_send(imap_cmd_new(c, "CAPABILITY"), on_step_done, c);
	} else if (c->sc->tls == TLS_STARTTLS && !c->tls_done) {
		if (!imap_client_has(c, CAP_STARTTLS)) {
			client_open_failed(c, ERR_PERM,
					   "the server does not offer STARTTLS (tls = \"starttls\")");
			return;
		}
		struct imap_cmd *cmd = imap_cmd_new(c, "STARTTLS");
		client_mark_hold(cmd);
		imap_cmd_send(cmd, on_starttls, c);
	} else if (!c->authenticated) {
		c->caps_fresh = false; /* capabilities change with login */
		authenticate(c);
	} else if (!c->enabled) {
		enable(c);
	} else {
		struct imap_reply ok = { .status = IMAP_STATUS_OK };
		client_open_finished(c, &ok);
	}
}

void login_greeting(struct imap_client *c, struct imap_response *r)
{
	if (r->kind != IMAP_RESP_UNTAGGED ||
	    (r->status != IMAP_STATUS_OK && r->status != IMAP_STATUS_PREAUTH)) {
		client_open_failed(c, ERR_TEMP, "the server refused the connection: %s",
				   imap_response_line(r));
		return;
	}
	c->state = CL_LOGIN;
	c->caps_fresh = false;
	if (imap_response_code_is(r, "CAPABILITY"))
		client_set_caps(c, r->code_args, r->ncode_args);
	if (r->status == IMAP_STATUS_PREAUTH) {
		/* RFC 3501 6.2.1: no STARTTLS after PREAUTH. A plaintext session the
		 * user asked to encrypt is not used. */
		if (c->sc->tls == TLS_STARTTLS) {
			client_open_failed(c, ERR_PERM,
					   "the server skipped login (PREAUTH) on a plaintext "
					   "connection, so STARTTLS is impossible");
			return;
		}
		c->authenticated = true;
		client_after_login(c);
	}
	next_step(c);
}
