/* The accounts list: each account's keys, its name (which labels every
 * message about it), and the rules between accounts: unique names, Maildir
 * roots that neither coincide nor nest, sync state kept out of them. */
#include "config/internal.h"

#include "core/xalloc.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

enum { NAME_MAX_LEN = 64 };

static const char *const layout_names[] = { "verbatim", "maildir++", NULL };

static const struct key_def account_keys[] = {
	CONF_KEY("name", K_STRING, struct account_conf, name),
	CONF_KEY("maildir", K_PATH, struct account_conf, maildir),
	CONF_KEY("layout", K_ENUM, struct account_conf, layout, .values = layout_names),
	CONF_KEY("new_mail_command", K_OPTSTR, struct account_conf, new_mail_command),
	CONF_KEY("post_sync_command", K_OPTSTR, struct account_conf, post_sync_command),
	CONF_KEY("hook_timeout", K_INT, struct account_conf, hook_timeout, .min = 1, .max = 86400),
	CONF_KEY("max_delete_share", K_SHARE, struct account_conf, max_delete_share),
	CONF_KEY("min_mass_delete", K_INT, struct account_conf, min_mass_delete, .min = 0,
		 .max = INT_MAX),
	CONF_KEY("special_use_names", K_BOOL, struct account_conf, special_use_names),
	CONF_KEY("imap", K_BLOCK, struct account_conf, imap, .sub = &conf_imap_def),
	CONF_KEY("pop3", K_BLOCK, struct account_conf, pop3, .sub = &conf_pop3_def),
	CONF_KEY("smtp", K_BLOCK, struct account_conf, smtp, .sub = &conf_smtp_def),
	{ .name = NULL },
};

_Static_assert(sizeof(enum layout) == sizeof(int), "enums are stored as int");

static void account_defaults(void *obj)
{
	struct account_conf *a = obj;
	a->layout = LAYOUT_VERBATIM;
	a->max_delete_share = 0.5;
	a->min_mass_delete = 20;
	a->hook_timeout = 60;
}

/* inner lies strictly below outer (both tidied absolute paths). */
static bool path_below(const char *inner, const char *outer)
{
	size_t n = strlen(outer);
	if (strcmp(outer, "/") == 0)
		return strcmp(inner, "/") != 0;
	return strncmp(inner, outer, n) == 0 && inner[n] == '/';
}

/* One account's Maildir tree must not be, hold or sit in another's: a sync
 * of one would see the other's folders as its own. */
static int maildir_check(struct conf_ctx *ctx, const struct block_seen *b,
			 const struct account_conf *a)
{
	const struct config *c = ctx->cfg;
	config_setting_t *m = config_setting_get_member(b->s, "maildir");
	for (const struct account_conf *o = c->accounts; o < a; o++) {
		const char *how = strcmp(a->maildir, o->maildir) == 0  ? "is also"
				  : path_below(a->maildir, o->maildir) ? "lies inside"
				  : path_below(o->maildir, a->maildir) ? "contains"
								       : NULL;
		if (how)
			return conf_error_at(ctx, m, b->path,
					     "%s the maildir of account \"%s\" (line %d)", how,
					     o->name, o->line);
	}
	return 0;
}

static int account_check(struct conf_ctx *ctx, const struct block_seen *b, void *obj)
{
	struct account_conf *a = obj;
	if (!a->maildir)
		return conf_error(ctx, a->line, b->path, "maildir", "required key is missing");
	if (a->imap && a->pop3)
		return conf_error(ctx, a->line, b->path, NULL,
				  "has both an imap and a pop3 block; an account has exactly one "
				  "(make two accounts)");
	if (!a->imap && !a->pop3)
		return conf_error(ctx, a->line, b->path, NULL, "needs an imap or a pop3 block");
	if (maildir_check(ctx, b, a) < 0)
		return -EINVAL;
	if (!a->smtp)
		return 0;
	char path[CONF_PATH_MAX];
	snprintf(path, sizeof(path), "%s.smtp", b->path);
	return conf_smtp_inherit(ctx, config_setting_get_member(b->s, "smtp"), path, a->smtp,
				 a->imap ? &a->imap->server : &a->pop3->server);
}

static const struct block_def account_def = {
	.keys = account_keys,
	.defaults = account_defaults,
	.check = account_check,
};

/* Names appear in file names, in messages and on mailferryctl's command line. */
static bool name_ok(const char *v)
{
	size_t n = strlen(v);
	if (n == 0 || n > NAME_MAX_LEN || v[0] == '.' || v[0] == '-')
		return false;
	return strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

/* The name is read before the other keys: it labels their messages. */
static int name_check(struct conf_ctx *ctx, config_setting_t *acct_s, const char *pos)
{
	config_setting_t *s = config_setting_get_member(acct_s, "name");
	if (!s)
		return conf_error(ctx, config_setting_source_line(acct_s), pos, "name",
				  "required key is missing");
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return conf_error_at(ctx, s, pos, "expected a string");
	const char *v = config_setting_get_string(s);
	if (!name_ok(v))
		return conf_error_at(ctx, s, pos,
				     "must be 1 to %d letters, digits, \".\", \"_\" or \"-\", not "
				     "starting with \".\" or \"-\" (it is used in file names and "
				     "commands)",
				     NAME_MAX_LEN);
	for (size_t i = 0; i < ctx->cfg->n_accounts; i++) {
		const struct account_conf *o = &ctx->cfg->accounts[i];
		if (strcmp(o->name, v) == 0)
			return conf_error_at(ctx, s, pos,
					     "\"%s\" is already the name of the account on line %d",
					     v, o->line);
	}
	return 0;
}

static int read_account(struct conf_ctx *ctx, config_setting_t *e, int pos)
{
	char path[CONF_PATH_MAX];
	int line = config_setting_source_line(e);
	snprintf(path, sizeof(path), "accounts[%d]", pos);
	if (!config_setting_is_group(e))
		return conf_error(ctx, line, path, NULL, "expected an account block { ... }");
	if (name_check(ctx, e, path) < 0)
		return -EINVAL;
	snprintf(path, sizeof(path), "accounts[%s]",
		 config_setting_get_string(config_setting_get_member(e, "name")));
	struct account_conf *a = &ctx->cfg->accounts[ctx->cfg->n_accounts++];
	a->line = line;
	account_defaults(a);
	return conf_walk_block(ctx, e, path, &account_def, a);
}

int conf_read_accounts(struct conf_ctx *ctx, config_setting_t *s, const char *path, void *obj)
{
	struct config *c = obj;
	int n =
	    config_setting_is_list(s) || config_setting_is_array(s) ? config_setting_length(s) : -1;
	if (n == 0)
		return conf_error_at(ctx, s, path, "is empty; define at least one account");
	/* An array cannot hold blocks, so only a list has accounts in it. */
	if (!config_setting_is_list(s))
		return conf_error_at(ctx, s, path,
				     "expected a list of account blocks: ( { ... }, { ... } )");
	c->accounts = xcalloc((size_t)n, sizeof(*c->accounts));
	for (int i = 0; i < n; i++)
		if (read_account(ctx, config_setting_get_elem(s, (unsigned)i), i + 1) < 0)
			return -EINVAL;
	return 0;
}

int conf_state_dir_check(struct conf_ctx *ctx, config_setting_t *root)
{
	const struct config *c = ctx->cfg;
	config_setting_t *list = config_setting_get_member(root, "accounts");
	for (size_t i = 0; i < c->n_accounts; i++) {
		const struct account_conf *a = &c->accounts[i];
		if (strcmp(c->general.state_dir, a->maildir) != 0 &&
		    !path_below(c->general.state_dir, a->maildir))
			continue;
		char path[CONF_PATH_MAX];
		snprintf(path, sizeof(path), "accounts[%s]", a->name);
		config_setting_t *m = config_setting_get_member(
		    config_setting_get_elem(list, (unsigned)i), "maildir");
		return conf_error_at(ctx, m, path,
				     "holds general.state_dir (%s); keep the sync state outside "
				     "the Maildir tree",
				     c->general.state_dir);
	}
	return 0;
}
