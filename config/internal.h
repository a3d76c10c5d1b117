/* Private to the config loader: the walk over libconfig's tree, the key
 * tables that describe each block, and the error helpers that give every
 * message its "FILE:LINE: key: what is wrong" shape. */
#ifndef MF_CONFIG_INTERNAL_H
#define MF_CONFIG_INTERNAL_H

#include "config/config.h"

#include <libconfig.h>
#include <stddef.h>
#include <stdint.h>

/* One load: where messages point and what has been built so far. */
struct conf_ctx {
	const char *file; /* the FILE part of messages */
	struct err *err;
	struct config *cfg; /* being filled; config_free copes with a partial one */
};

/* Longest key path kept in messages: "accounts[NAME].imap.max_connections". */
#define CONF_PATH_MAX 160

enum key_kind {
	K_STRING,  /* non-empty string */
	K_OPTSTR,  /* string; "" is stored as NULL */
	K_FOLDER,  /* folder name under the account root; "" only when min == 0 */
	K_PATH,    /* expanded with config_expand_path, must end up absolute */
	K_INT,     /* integer in [min, max] */
	K_BOOL,    /* true or false */
	K_ENUM,    /* one of values[], stored as the index */
	K_STRLIST, /* array or list of non-empty strings, stored NULL-terminated */
	K_SHARE,   /* number (integer or float) in (0, 1] */
	K_FPR,     /* sha256 certificate pin, stored as 64 lowercase hex digits */
	K_BLOCK,   /* a nested block, allocated, described by sub */
	K_GROUP,   /* a nested block embedded in its parent's struct (defaults set by the parent) */
	K_CUSTOM,  /* read by the key's own function */
};

struct block_def;

struct key_def {
	const char *name;
	enum key_kind kind;
	size_t off; /* where the value goes in the block's struct */
	long long min, max;
	const char *const *values;   /* K_ENUM: NULL-terminated, index = enum value */
	const struct block_def *sub; /* K_BLOCK, K_GROUP */
	int (*read)(struct conf_ctx *ctx, config_setting_t *s, const char *path, void *obj);
};

/* A key_def entry for field f of struct T; the rest are designated (.min = ...). */
#define CONF_KEY(n, k, T, f, ...)                                                                  \
	{                                                                                          \
		.name = (n), .kind = (k), .off = offsetof(T, f), __VA_ARGS__                       \
	}

/* What the walk hands to a block's check: the setting and which keys it had. */
struct block_seen {
	config_setting_t *s;
	const char *path; /* the block's key path, "" at top level */
	uint64_t mask;    /* bit i: keys[i] was present */
};

struct block_def {
	const struct key_def *keys; /* terminated by a NULL name */
	size_t size;                /* K_BLOCK allocation size */
	void (*defaults)(void *obj);
	/* Cross-key rules once every key was read; 0 or -EINVAL with err filled. */
	int (*check)(struct conf_ctx *ctx, const struct block_seen *b, void *obj);
};

/* Reads every member of the group s into obj following def, refusing unknown
 * keys, then runs def->check. path is the group's own key path. */
int conf_walk_block(struct conf_ctx *ctx, config_setting_t *s, const char *path,
		    const struct block_def *def, void *obj);

/* The index of name in def's key table, or -1. */
int conf_key_index(const struct block_def *def, const char *name);
/* Whether key name was present, per b->mask. */
bool conf_seen(const struct block_def *def, const struct block_seen *b, const char *name);

/* Fills ctx->err with "FILE:LINE: PATH.KEY: message" (PATH may be "", key may
 * be NULL) and returns -EINVAL. line <= 0 leaves out the line. */
int conf_error(struct conf_ctx *ctx, int line, const char *path, const char *key, const char *fmt,
	       ...) __attribute__((format(printf, 5, 6)));
/* The same for a setting: its own line and name under path. */
int conf_error_at(struct conf_ctx *ctx, const config_setting_t *s, const char *path,
		  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Writes s into out (size n) quoted, control characters escaped as \xNN and
 * long values cut with "...", so a message stays one readable line. */
void conf_quote(char *out, size_t n, const char *s);

/* Levenshtein distance, capped: returns cap + 1 as soon as it exceeds cap. */
int conf_edit_distance(const char *a, const char *b, int cap);

/* The whole file: the root group's keys, general and accounts. */
extern const struct block_def conf_root_def;
/* The accounts list (K_CUSTOM reader for the root's "accounts"); obj is the config. */
int conf_read_accounts(struct conf_ctx *ctx, config_setting_t *s, const char *path, void *obj);
/* No account's Maildir tree may hold general.state_dir (its files would look
 * like folders); root is the file's root setting. */
int conf_state_dir_check(struct conf_ctx *ctx, config_setting_t *root);
/* The imap, pop3 and smtp blocks of an account. */
extern const struct block_def conf_imap_def, conf_pop3_def, conf_smtp_def;
/* An account's smtp block takes what it leaves out from the account's imap or
 * pop3 block, then gets the plaintext check that needs the password. */
int conf_smtp_inherit(struct conf_ctx *ctx, config_setting_t *smtp_s, const char *path,
		      struct smtp_conf *smtp, const struct server_conf *from);

/* The home directory: $HOME, else the password database; NULL if neither. */
const char *conf_home(void);
/* $var when it is set to an absolute path (the XDG Base Directory rule), else NULL. */
const char *conf_xdg_dir(const char *var);
/* Collapses repeated slashes and "." parts and drops a trailing slash, in place. */
void conf_path_tidy(char *p);
/* $XDG_RUNTIME_DIR/mailferry/ctl.sock, else /tmp/mailferry-UID/ctl.sock. */
char *conf_default_socket(void);

void conf_free_strv(char ***v);
void conf_server_clear(struct server_conf *sc);

#endif
