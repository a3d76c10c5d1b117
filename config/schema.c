/* The schema: which keys each block has, their kinds, defaults and ranges,
 * and the rules that tie keys of one server block together. The account
 * block and the accounts list are in account.c. */
#include "config/internal.h"

#include "core/log.h"
#include "core/xalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>
#include <unistd.h>

/* read_enum stores the index through an int. */
_Static_assert(sizeof(enum tls_mode) == sizeof(int) && sizeof(enum auth_mech) == sizeof(int) &&
		   sizeof(enum delete_mode) == sizeof(int) &&
		   sizeof(enum folder_policy) == sizeof(int),
	       "enums are stored as int");
_Static_assert(LOG_ERROR == 0 && LOG_TRACE == 4, "log_level_names follows enum log_level");

static const char *const tls_names[] = { "implicit", "starttls", "none", NULL };
static const char *const auth_names[] = {
	"auto", "plain", "login", "xoauth2", "oauthbearer", NULL
};
static const char *const delete_names[] = { "expunge", "trash", NULL };
static const char *const policy_names[] = { "both", "local", "remote", "none", NULL };
static const char *const log_level_names[] = { "error", "warn", "info", "debug", "trace", NULL };

const char *tls_mode_name(enum tls_mode m)
{
	BUG_ON((unsigned)m > TLS_NONE);
	return tls_names[m];
}

/* The keys every server block has; T is the block's struct. */
#define SERVER_KEYS(T)                                                                             \
	CONF_KEY("host", K_STRING, T, server.host),                                                \
	    CONF_KEY("port", K_INT, T, server.port, .min = 1, .max = 65535),                       \
	    CONF_KEY("tls", K_ENUM, T, server.tls, .values = tls_names),                           \
	    CONF_KEY("allow_plaintext", K_BOOL, T, server.allow_plaintext),                        \
	    CONF_KEY("ca_file", K_PATH, T, server.ca_file),                                        \
	    CONF_KEY("fingerprint", K_FPR, T, server.fingerprint),                                 \
	    CONF_KEY("user", K_STRING, T, server.user),                                            \
	    CONF_KEY("password", K_STRING, T, server.password),                                    \
	    CONF_KEY("password_command", K_STRING, T, server.password_command),                    \
	    CONF_KEY("auth", K_ENUM, T, server.auth, .values = auth_names),                        \
	    CONF_KEY("timeout", K_INT, T, server.timeout, .min = 1, .max = 3600)

static void server_defaults(struct server_conf *sc)
{
	sc->tls = TLS_IMPLICIT;
	sc->auth = AUTH_AUTO;
	sc->timeout = 60;
}

static bool is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;
	if (strcasecmp(host, "localhost") == 0 || strcasecmp(host, "localhost.") == 0)
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6) ||
		       (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
	return false;
}

/* A password (or the output of password_command) goes in the clear only to
 * this machine, or where the user said in writing that this is fine. */
static int plaintext_check(struct conf_ctx *ctx, config_setting_t *block, const char *path,
			   const struct server_conf *sc)
{
	if (sc->tls != TLS_NONE || sc->allow_plaintext || is_loopback(sc->host))
		return 0;
	if (!sc->password && !sc->password_command)
		return 0;
	char q[96];
	conf_quote(q, sizeof(q), sc->host);
	return conf_error_at(ctx, config_setting_get_member(block, "tls"), path,
			     "\"none\" would send the password unencrypted to %s; use \"implicit\" "
			     "or \"starttls\", or set allow_plaintext = true",
			     q);
}

static int host_check(struct conf_ctx *ctx, const struct block_seen *b, const char *host)
{
	for (const char *p = host; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '/')
			return conf_error_at(ctx, config_setting_get_member(b->s, "host"), b->path,
					     "must be a host name or an IP address");
	return 0;
}

/* What every server block needs: a host, a port (by tls when unset), and at
 * most one way to get the password. */
static int server_check(struct conf_ctx *ctx, const struct block_seen *b,
			const struct block_def *def, struct server_conf *sc, int port_tls,
			int port_plain)
{
	int line = config_setting_source_line(b->s);
	sc->line = line;
	if (!sc->host)
		return conf_error(ctx, line, b->path, "host", "required key is missing");
	if (host_check(ctx, b, sc->host) < 0)
		return -EINVAL;
	if (!conf_seen(def, b, "port"))
		sc->port = sc->tls == TLS_IMPLICIT ? port_tls : port_plain;
	if (sc->password && sc->password_command) {
		config_setting_t *p = config_setting_get_member(b->s, "password");
		config_setting_t *c = config_setting_get_member(b->s, "password_command");
		config_setting_t *later = config_setting_index(p) > config_setting_index(c) ? p : c;
		return conf_error_at(ctx, later, b->path,
				     "both password and password_command are set; keep one");
	}
	return 0;
}

/* imap and pop3 blocks carry the account's credentials themselves. */
static int login_check(struct conf_ctx *ctx, const struct block_seen *b,
		       const struct server_conf *sc)
{
	int line = config_setting_source_line(b->s);
	if (!sc->user)
		return conf_error(ctx, line, b->path, "user", "required key is missing");
	if (!sc->password && !sc->password_command)
		return conf_error(ctx, line, b->path, "password_command",
				  "required key is missing (or set password)");
	return plaintext_check(ctx, b->s, b->path, sc);
}

static const struct key_def imap_keys[] = {
	SERVER_KEYS(struct imap_conf),
	CONF_KEY("folders", K_STRLIST, struct imap_conf, folders),
	CONF_KEY("idle", K_STRLIST, struct imap_conf, idle),
	CONF_KEY("poll_interval", K_INT, struct imap_conf, poll_interval, .min = 1, .max = 86400),
	/* RFC 2177: IDLE is renewed in less than 29 minutes. */
	CONF_KEY("keepalive", K_INT, struct imap_conf, keepalive, .min = 5, .max = 29 * 60 - 1),
	CONF_KEY("max_connections", K_INT, struct imap_conf, max_connections, .min = 1, .max = 32),
	CONF_KEY("delete", K_ENUM, struct imap_conf, delete_mode, .values = delete_names),
	CONF_KEY("create_folders", K_ENUM, struct imap_conf, create_folders,
		 .values = policy_names),
	CONF_KEY("remove_folders", K_ENUM, struct imap_conf, remove_folders,
		 .values = policy_names),
	{ .name = NULL },
};

static char **strv_of(const char *s)
{
	char **v = xcalloc(2, sizeof(char *));
	v[0] = xstrdup(s);
	return v;
}

static void imap_defaults(void *obj)
{
	struct imap_conf *ic = obj;
	server_defaults(&ic->server);
	ic->folders = strv_of("*");
	ic->idle = strv_of("INBOX");
	ic->poll_interval = 300;
	ic->keepalive = 300;
	ic->max_connections = 4;
	ic->delete_mode = DELETE_EXPUNGE;
	ic->create_folders = FOLDERS_BOTH;
	ic->remove_folders = FOLDERS_NONE;
}

static int imap_check(struct conf_ctx *ctx, const struct block_seen *b, void *obj)
{
	struct imap_conf *ic = obj;
	if (server_check(ctx, b, &conf_imap_def, &ic->server, 993, 143) < 0 ||
	    login_check(ctx, b, &ic->server) < 0)
		return -EINVAL;
	if (!ic->folders[0])
		return conf_error_at(ctx, config_setting_get_member(b->s, "folders"), b->path,
				     "selects no folder; leave it out to sync every folder");
	return 0;
}

const struct block_def conf_imap_def = {
	.keys = imap_keys,
	.size = sizeof(struct imap_conf),
	.defaults = imap_defaults,
	.check = imap_check,
};

static const struct key_def pop3_keys[] = {
	SERVER_KEYS(struct pop3_conf),
	CONF_KEY("poll_interval", K_INT, struct pop3_conf, poll_interval, .min = 1, .max = 86400),
	CONF_KEY("keep", K_BOOL, struct pop3_conf, keep),
	CONF_KEY("delete_after_days", K_INT, struct pop3_conf, delete_after_days, .min = 0,
		 .max = 36500),
	{ .name = NULL },
};

static void pop3_defaults(void *obj)
{
	struct pop3_conf *pc = obj;
	server_defaults(&pc->server);
	pc->poll_interval = 300;
	pc->keep = true;
}

static int pop3_check(struct conf_ctx *ctx, const struct block_seen *b, void *obj)
{
	struct pop3_conf *pc = obj;
	if (server_check(ctx, b, &conf_pop3_def, &pc->server, 995, 110) < 0 ||
	    login_check(ctx, b, &pc->server) < 0)
		return -EINVAL;
	if (!pc->keep && pc->delete_after_days > 0)
		return conf_error_at(ctx, config_setting_get_member(b->s, "delete_after_days"),
				     b->path,
				     "applies only with keep = true (keep = false deletes each "
				     "message as soon as it is fetched)");
	return 0;
}

const struct block_def conf_pop3_def = {
	.keys = pop3_keys,
	.size = sizeof(struct pop3_conf),
	.defaults = pop3_defaults,
	.check = pop3_check,
};

static const struct key_def smtp_keys[] = {
	SERVER_KEYS(struct smtp_conf),
	CONF_KEY("outbox", K_FOLDER, struct smtp_conf, outbox, .min = 1),
	CONF_KEY("sent", K_FOLDER, struct smtp_conf, sent, .min = 0),
	{ .name = NULL },
};

static void smtp_defaults(void *obj)
{
	struct smtp_conf *sm = obj;
	server_defaults(&sm->server);
	sm->outbox = xstrdup("Outbox");
	sm->sent = xstrdup("Sent");
}

static int smtp_check(struct conf_ctx *ctx, const struct block_seen *b, void *obj)
{
	struct smtp_conf *sm = obj;
	return server_check(ctx, b, &conf_smtp_def, &sm->server, 465, 587);
}

const struct block_def conf_smtp_def = {
	.keys = smtp_keys,
	.size = sizeof(struct smtp_conf),
	.defaults = smtp_defaults,
	.check = smtp_check,
};

int conf_smtp_inherit(struct conf_ctx *ctx, config_setting_t *smtp_s, const char *path,
		      struct smtp_conf *smtp, const struct server_conf *from)
{
	struct server_conf *sc = &smtp->server;
	if (!sc->user)
		sc->user = xstrdup(from->user);
	if (!sc->password && !sc->password_command) {
		sc->password = from->password ? xstrdup(from->password) : NULL;
		sc->password_command =
		    from->password_command ? xstrdup(from->password_command) : NULL;
	}
	if (!config_setting_get_member(smtp_s, "auth"))
		sc->auth = from->auth;
	return plaintext_check(ctx, smtp_s, path, sc);
}

static const struct key_def general_keys[] = {
	CONF_KEY("state_dir", K_PATH, struct general_conf, state_dir),
	CONF_KEY("control_socket", K_PATH, struct general_conf, control_socket),
	CONF_KEY("log_level", K_ENUM, struct general_conf, log_level, .values = log_level_names),
	{ .name = NULL },
};

static int general_check(struct conf_ctx *ctx, const struct block_seen *b, void *obj)
{
	struct general_conf *g = obj;
	size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;
	if (g->control_socket && strlen(g->control_socket) > max)
		return conf_error_at(ctx, config_setting_get_member(b->s, "control_socket"),
				     b->path,
				     "is %zu bytes long; a unix socket path has at most %zu",
				     strlen(g->control_socket), max);
	return 0;
}

static const struct block_def general_def = {
	.keys = general_keys,
	.check = general_check,
};

static int general_finish(struct conf_ctx *ctx, struct general_conf *g)
{
	const char *home = conf_home();
	if (!g->state_dir) {
		const char *xdg = conf_xdg_dir("XDG_STATE_HOME");
		if (!xdg && !home)
			return conf_error(ctx, 0, "general", "state_dir",
					  "no default: neither $XDG_STATE_HOME nor the home "
					  "directory is known; set it");
		g->state_dir = xdg ? xasprintf("%s/mailferry", xdg)
				   : xasprintf("%s/.local/state/mailferry", home);
		conf_path_tidy(g->state_dir);
	}
	if (!g->control_socket)
		g->control_socket = conf_default_socket();
	return 0;
}

char *conf_default_socket(void)
{
	const char *xdg = conf_xdg_dir("XDG_RUNTIME_DIR");
	char *path = xdg ? xasprintf("%s/mailferry/ctl.sock", xdg)
			 : xasprintf("/tmp/mailferry-%u/ctl.sock", (unsigned)getuid());
	conf_path_tidy(path);
	return path;
}

static void root_defaults(void *obj)
{
	struct config *c = obj;
	c->general.log_level = LOG_INFO;
}

static int root_check(struct conf_ctx *ctx, const struct block_seen *b, void *obj)
{
	struct config *c = obj;
	if (!conf_seen(&conf_root_def, b, "accounts"))
		return conf_error(ctx, 0, "", "accounts",
				  "required key is missing (define at least one account)");
	if (general_finish(ctx, &c->general) < 0)
		return -EINVAL;
	return conf_state_dir_check(ctx, b->s);
}

static const struct key_def root_keys[] = {
	CONF_KEY("general", K_GROUP, struct config, general, .sub = &general_def),
	{ .name = "accounts", .kind = K_CUSTOM, .read = conf_read_accounts },
	{ .name = NULL },
};

const struct block_def conf_root_def = {
	.keys = root_keys,
	.defaults = root_defaults,
	.check = root_check,
};
