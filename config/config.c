/* Loading: read the file, refuse what libconfig should never see (@include)
 * or what must not be used (a readable file holding a password), let
 * libconfig parse, walk the tree (walk.c, schema.c, account.c), and free. */
#include "config/config.h"
#include "config/internal.h"

#include "core/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Far more than any real config; a bigger file is the wrong file. */
enum { CONF_MAX_BYTES = 1 << 20 };

/* libconfig opens @include files while it scans, relative to nothing we
 * control and before we could look at them; one file keeps line numbers and
 * the permission check simple. Any line starting with @include is refused,
 * also one inside a comment: the test is cheap and errs on the safe side. */
static int refuse_include(const char *text, const char *name, struct err *err)
{
	int line = 1;
	for (const char *p = text; p; line++) {
		const char *q = p + strspn(p, " \t");
		if (strncmp(q, "@include", 8) == 0)
			return err_set(
			    err, -EINVAL, ERR_CONFIG,
			    "%s:%d: @include: not supported; keep the whole configuration "
			    "in one file",
			    name, line);
		p = strchr(p, '\n');
		p = p ? p + 1 : NULL;
	}
	return 0;
}

static bool holds_password(const config_setting_t *s)
{
	const char *name = config_setting_name(s);
	if (name && strcmp(name, "password") == 0)
		return true;
	if (!config_setting_is_aggregate(s))
		return false;
	for (int i = 0; i < config_setting_length(s); i++)
		if (holds_password(config_setting_get_elem(s, (unsigned)i)))
			return true;
	return false;
}

/* libconfig frees its strings without clearing them. */
static void wipe_passwords(config_setting_t *s)
{
	const char *name = config_setting_name(s);
	if (name && strcmp(name, "password") == 0 && config_setting_type(s) == CONFIG_TYPE_STRING) {
		char *v = (char *)config_setting_get_string(s);
		explicit_bzero(v, strlen(v));
	}
	if (!config_setting_is_aggregate(s))
		return;
	for (int i = 0; i < config_setting_length(s); i++)
		wipe_passwords(config_setting_get_elem(s, (unsigned)i));
}

static int syntax_error(config_t *lc, const char *name, struct err *err)
{
	const char *text = config_error_text(lc);
	if (!text || strcmp(text, "syntax error") == 0)
		return err_set(err, -EINVAL, ERR_CONFIG, "%s:%d: syntax error", name,
			       config_error_line(lc));
	return err_set(err, -EINVAL, ERR_CONFIG, "%s:%d: syntax error: %s", name,
		       config_error_line(lc), text);
}

/* mode: the file's st_mode for the permission check, or 0 for none. */
static int load_text(const char *text, const char *name, mode_t mode, struct config **out,
		     struct err *err)
{
	config_t lc;
	*out = NULL;
	if (refuse_include(text, name, err) < 0)
		return -EINVAL;
	config_init(&lc);
	int rc = 0;
	if (!config_read_string(&lc, text)) {
		rc = syntax_error(&lc, name, err);
	} else if ((mode & 044) && holds_password(config_root_setting(&lc))) {
		rc = err_set(err, -EINVAL, ERR_CONFIG,
			     "%s: holds a password but is readable by group or others; run: chmod "
			     "600 %s",
			     name, name);
	} else {
		struct config *c = xcalloc(1, sizeof(*c));
		struct conf_ctx ctx = { .file = name, .err = err, .cfg = c };
		c->path = xstrdup(name);
		conf_root_def.defaults(c);
		rc = conf_walk_block(&ctx, config_root_setting(&lc), "", &conf_root_def, c);
		if (rc < 0)
			config_free(&c);
		*out = c;
	}
	wipe_passwords(config_root_setting(&lc));
	config_destroy(&lc);
	return rc;
}

int config_load_string(const char *text, const char *name, struct config **out, struct err *err)
{
	return load_text(text, name, 0, out, err);
}

/* Reads at most CONF_MAX_BYTES of the regular file fd into *text. */
static int read_all(int fd, const char *path, char **text, struct err *err)
{
	char *t = xmalloc(CONF_MAX_BYTES + 2);
	size_t len = 0;
	while (len <= CONF_MAX_BYTES) {
		ssize_t n = read(fd, t + len, CONF_MAX_BYTES + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			free(t);
			return err_set(err, -e, ERR_CONFIG, "%s: cannot read: %s", path,
				       strerror(e));
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	t[len] = '\0';
	if (len > CONF_MAX_BYTES || memchr(t, '\0', len)) {
		explicit_bzero(t, len);
		free(t);
		return err_set(err, -EINVAL, ERR_CONFIG, "%s: not a config file (%s)", path,
			       len > CONF_MAX_BYTES ? "larger than 1 MiB" : "holds NUL bytes");
	}
	*text = t;
	return 0;
}

/* Opens path for reading if it is a regular file; fills *st. O_NONBLOCK
 * keeps a FIFO from blocking the open (it changes nothing for a file). */
static int open_file(const char *path, struct stat *st, struct err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	int e = fd < 0 ? errno : fstat(fd, st) < 0 ? errno : 0;
	if (!e && !S_ISREG(st->st_mode))
		e = S_ISDIR(st->st_mode) ? EISDIR : EINVAL;
	if (!e)
		return fd;
	if (fd >= 0)
		close(fd);
	return err_set(err, -e, ERR_CONFIG, "%s: cannot read: %s", path,
		       e == EINVAL ? "not a regular file" : strerror(e));
}

int config_load(const char *path, struct config **out, struct err *err)
{
	struct stat st;
	char *text = NULL;
	*out = NULL;
	int fd = open_file(path, &st, err);
	if (fd < 0)
		return fd;
	int rc = read_all(fd, path, &text, err);
	close(fd);
	if (rc < 0)
		return rc;
	rc = load_text(text, path, st.st_mode, out, err);
	explicit_bzero(text, strlen(text));
	free(text);
	return rc;
}

char *config_control_socket(const char *path, struct err *err)
{
	struct stat st;
	char *text = NULL;
	int fd = open_file(path, &st, err);
	if (fd < 0)
		return NULL;
	int rc = read_all(fd, path, &text, err);
	close(fd);
	if (rc < 0)
		return NULL;
	config_t lc;
	config_init(&lc);
	struct err ignored;
	const char *sock = NULL;
	char *out = NULL;
	if (refuse_include(text, path, &ignored) == 0 && config_read_string(&lc, text) &&
	    config_lookup_string(&lc, "general.control_socket", &sock))
		out = config_expand_path(sock, &ignored);
	config_destroy(&lc);
	explicit_bzero(text, strlen(text));
	free(text);
	if (!out)
		return conf_default_socket();
	conf_path_tidy(out);
	return out;
}

char *config_default_path(void)
{
	const char *xdg = conf_xdg_dir("XDG_CONFIG_HOME");
	if (xdg)
		return xasprintf("%s/mailferry/config", xdg);
	const char *home = conf_home();
	return home ? xasprintf("%s/.config/mailferry/config", home) : NULL;
}

const struct account_conf *config_find_account(const struct config *c, const char *name)
{
	for (size_t i = 0; c && i < c->n_accounts; i++)
		if (strcmp(c->accounts[i].name, name) == 0)
			return &c->accounts[i];
	return NULL;
}

void conf_free_strv(char ***v)
{
	for (char **p = *v; p && *p; p++)
		free(*p);
	xfree(v);
}

static void wipe_free(char **s)
{
	if (*s)
		explicit_bzero(*s, strlen(*s));
	xfree(s);
}

void conf_server_clear(struct server_conf *sc)
{
	xfree(&sc->host);
	xfree(&sc->ca_file);
	xfree(&sc->fingerprint);
	xfree(&sc->user);
	wipe_free(&sc->password);
	/* A command may carry a token on its command line. */
	wipe_free(&sc->password_command);
}

static void account_clear(struct account_conf *a)
{
	xfree(&a->name);
	xfree(&a->maildir);
	xfree(&a->new_mail_command);
	xfree(&a->post_sync_command);
	if (a->imap) {
		conf_server_clear(&a->imap->server);
		conf_free_strv(&a->imap->folders);
		conf_free_strv(&a->imap->idle);
		xfree(&a->imap);
	}
	if (a->pop3) {
		conf_server_clear(&a->pop3->server);
		xfree(&a->pop3);
	}
	if (a->smtp) {
		conf_server_clear(&a->smtp->server);
		xfree(&a->smtp->outbox);
		xfree(&a->smtp->sent);
		xfree(&a->smtp);
	}
}

void config_free(struct config **cp)
{
	struct config *c = *cp;
	if (!c)
		return;
	for (size_t i = 0; i < c->n_accounts; i++)
		account_clear(&c->accounts[i]);
	free(c->accounts);
	free(c->general.state_dir);
	free(c->general.control_socket);
	free(c->path);
	free(c);
	*cp = NULL;
}
