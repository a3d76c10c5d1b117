/* Path expansion for the keys that name files: a leading ~, and $VAR or
 * ${VAR} anywhere, the way a shell user expects them in ~/.mbsyncrc-like
 * files. An unset variable is an error rather than an empty string: "$X/mail"
 * silently becoming "/mail" would put mail somewhere nobody looks. */
#include "config/internal.h"

#include "core/buf.h"
#include "core/xalloc.h"

#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *conf_home(void)
{
	const char *h = getenv("HOME");
	if (h && h[0])
		return h;
	struct passwd *pw = getpwuid(getuid());
	return pw && pw->pw_dir && pw->pw_dir[0] ? pw->pw_dir : NULL;
}

const char *conf_xdg_dir(const char *var)
{
	const char *v = getenv(var);
	return v && v[0] == '/' ? v : NULL;
}

void conf_path_tidy(char *p)
{
	char *w = p;
	for (const char *r = p; *r;) {
		bool after_slash = w > p && w[-1] == '/';
		if (after_slash && (r[0] == '/' || (r[0] == '.' && (r[1] == '/' || !r[1])))) {
			r++;
			continue;
		}
		*w++ = *r++;
	}
	if (w > p + 1 && w[-1] == '/')
		w--;
	*w = '\0';
}

static bool var_start(char c)
{
	return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static size_t var_len(const char *p)
{
	size_t n = 0;
	if (!var_start(p[0]))
		return 0;
	while (var_start(p[n]) || (p[n] >= '0' && p[n] <= '9'))
		n++;
	return n;
}

/* p points at '$'. Appends the variable's value to b and returns how many
 * bytes of p it stood for, or 0 with err filled. A '$' that starts no
 * variable name stands for itself. */
static size_t expand_var(struct buf *b, const char *p, struct err *err)
{
	bool braced = p[1] == '{';
	const char *name = p + 1 + braced;
	size_t n = var_len(name);
	if (braced && (n == 0 || name[n] != '}')) {
		err_set(err, -EINVAL, ERR_CONFIG,
			"\"${\" must be followed by a variable name and \"}\"");
		return 0;
	}
	if (n == 0) {
		buf_putc(b, '$');
		return 1;
	}
	char *var = xstrndup(name, n);
	const char *val = getenv(var);
	size_t used = 1 + n + (braced ? 2 : 0);
	if (!val || !val[0]) {
		err_set(err, -EINVAL, ERR_CONFIG, "$%s is %s", var, val ? "empty" : "not set");
		used = 0;
	} else {
		buf_puts(b, val);
	}
	free(var);
	return used;
}

char *config_expand_path(const char *s, struct err *err)
{
	struct buf b = { 0 };
	const char *p = s;
	if (p[0] == '~') {
		const char *home = conf_home();
		if (p[1] && p[1] != '/') {
			err_set(
			    err, -EINVAL, ERR_CONFIG,
			    "only a leading ~ or ~/ is expanded (not ~user); write the full path");
			return NULL;
		}
		if (!home) {
			err_set(
			    err, -ENOENT, ERR_CONFIG,
			    "cannot expand ~: $HOME is not set and the user has no home directory");
			return NULL;
		}
		buf_puts(&b, home);
		p++;
	}
	while (*p) {
		if (*p != '$') {
			buf_putc(&b, *p++);
			continue;
		}
		size_t used = expand_var(&b, p, err);
		if (!used) {
			buf_free(&b);
			return NULL;
		}
		p += used;
	}
	return buf_steal(&b);
}
