/* The config file: loading, defaults, validation, and the parsed schema.
 * Shared by mailferryd and mailferryctl. Every error names the file, the
 * line and the key: "FILE:LINE: key: what is wrong". The schema is the one of
 * shared INTERFACE.md; docs/mailferry.conf.5 documents it for users.
 * Depends on core/ and libconfig only (password_command lives in secret.h). */
#ifndef MF_CONFIG_H
#define MF_CONFIG_H

#include "core/err.h"

#include <stdbool.h>
#include <stddef.h>

enum tls_mode { TLS_IMPLICIT, TLS_STARTTLS, TLS_NONE };
enum auth_mech { AUTH_AUTO, AUTH_PLAIN, AUTH_LOGIN, AUTH_XOAUTH2, AUTH_OAUTHBEARER };
enum layout { LAYOUT_VERBATIM, LAYOUT_MAILDIRPP };
/* Which side a folder creation or removal is carried to. */
enum folder_policy { FOLDERS_BOTH, FOLDERS_LOCAL, FOLDERS_REMOTE, FOLDERS_NONE };
enum delete_mode { DELETE_EXPUNGE, DELETE_TRASH };

/* How to reach and log in to one server; shared by the imap, pop3 and smtp blocks. */
struct server_conf {
	char *host;
	int port; /* filled with the protocol's default when absent */
	enum tls_mode tls;
	bool allow_plaintext;
	char *ca_file;     /* NULL: the system store */
	char *fingerprint; /* NULL, or 64 lowercase hex digits (SHA-256 of the leaf cert DER) */
	char *user;
	char *password;         /* NULL when password_command is used; wiped on free */
	char *password_command; /* run with /bin/sh -c; the first line of stdout is the secret */
	enum auth_mech auth;
	int timeout; /* seconds without progress before a connection is declared dead */
	int line;    /* where the block starts, for messages about it */
};

struct imap_conf {
	struct server_conf server;
	char **folders; /* NULL-terminated patterns; "!pat" excludes */
	char **idle;    /* NULL-terminated folder names */
	int poll_interval;
	int keepalive; /* seconds between IDLE renewals of the push connection */
	int max_connections;
	enum delete_mode delete_mode;
	enum folder_policy create_folders;
	enum folder_policy remove_folders;
};

struct pop3_conf {
	struct server_conf server;
	int poll_interval;
	bool keep;
	int delete_after_days; /* 0: never (with keep = true) */
};

struct smtp_conf {
	/* user, password or password_command, and auth are the account's imap
	 * or pop3 block's when the smtp block leaves them out */
	struct server_conf server;
	char *outbox; /* folder name under the account root */
	char *sent;   /* "" when the server files sent copies itself */
};

struct account_conf {
	char *name;
	char *maildir; /* expanded absolute path */
	enum layout layout;
	char *new_mail_command;  /* NULL when unset or "" */
	char *post_sync_command; /* NULL when unset or "" */
	int hook_timeout;	 /* seconds a hook may run before it is killed */
	double max_delete_share;
	int min_mass_delete; /* folders with at most this many messages are never guarded */
	bool special_use_names;
	struct imap_conf *imap; /* exactly one of imap and pop3 */
	struct pop3_conf *pop3;
	struct smtp_conf *smtp; /* optional */
	int line;
};

struct general_conf {
	char *state_dir;      /* expanded */
	char *control_socket; /* expanded */
	int log_level;        /* enum log_level */
};

struct config {
	char *path;
	struct general_conf general;
	struct account_conf *accounts;
	size_t n_accounts;
};

/* Loads and validates path. Returns 0 and sets *out (owned by the caller,
 * free with config_free), or a negative errno with err->msg in the
 * "FILE:LINE: key: what is wrong" form and err->cls == ERR_CONFIG. */
int config_load(const char *path, struct config **out, struct err *err);

/* Same as config_load for a config held in memory (fuzzing, tests); name is
 * used as the FILE part of messages; no permission check is made. */
int config_load_string(const char *text, const char *name, struct config **out,
		       struct err *err);

/* The default config path: $XDG_CONFIG_HOME/mailferry/config, else
 * ~/.config/mailferry/config. Caller frees. NULL when no home directory is
 * known. */
char *config_default_path(void);

/* The control socket the config at path names, read leniently for
 * mailferryctl, which must reach the daemon also when the file has an error
 * (to hear it reported by reload): general.control_socket when the file
 * parses and sets it, else the default. NULL (and err) only when the file
 * cannot be read. Caller frees. */
char *config_control_socket(const char *path, struct err *err);

/* Frees the config and wipes passwords; NULL-safe, clears *c. */
void config_free(struct config **c);

const struct account_conf *config_find_account(const struct config *c, const char *name);

/* Expands a leading ~ or ~/ and $VAR / ${VAR} anywhere in s. Returns a new
 * string, or NULL with err->msg naming the undefined (or empty) variable, or
 * saying why ~ could not be expanded (~user is not supported). */
char *config_expand_path(const char *s, struct err *err);

const char *tls_mode_name(enum tls_mode m);

#endif
