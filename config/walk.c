/* The generic walk: every member of a group is looked up in the block's key
 * table and read by its kind, so type and range errors read alike for every
 * key, and a key nobody knows is an error with a suggestion. */
#include "config/internal.h"

#include "core/xalloc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int conf_error(struct conf_ctx *ctx, int line, const char *path, const char *key, const char *fmt,
	       ...)
{
	char what[sizeof(ctx->err->msg)], where[32] = "";
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (line > 0)
		snprintf(where, sizeof(where), ":%d", line);
	const char *dot = path[0] && key ? "." : "";
	return err_set(ctx->err, -EINVAL, ERR_CONFIG, "%s%s: %s%s%s: %s", ctx->file, where, path,
		       dot, key ? key : "", what);
}

int conf_error_at(struct conf_ctx *ctx, const config_setting_t *s, const char *path,
		  const char *fmt, ...)
{
	char what[sizeof(ctx->err->msg)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return conf_error(ctx, config_setting_source_line(s), path, config_setting_name(s), "%s",
			  what);
}

void conf_quote(char *out, size_t n, const char *s)
{
	static const size_t shown = 60;
	size_t o = 0, i;
	BUG_ON(n < 16);
	out[o++] = '"';
	for (i = 0; s[i] && i < shown && o + 8 < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f || c == '"' || c == '\\')
			o += (size_t)snprintf(out + o, n - o, "\\x%02x", c);
		else
			out[o++] = (char)c;
	}
	if (s[i] && o + 5 < n) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o++] = '"';
	out[o] = '\0';
}

int conf_edit_distance(const char *a, const char *b, int cap)
{
	enum { MAXLEN = 64 };
	size_t la = strlen(a), lb = strlen(b);
	int prev[MAXLEN + 1], cur[MAXLEN + 1];
	if (la > MAXLEN || lb > MAXLEN || (la > lb ? la - lb : lb - la) > (size_t)cap)
		return cap + 1;
	for (size_t j = 0; j <= lb; j++)
		prev[j] = (int)j;
	for (size_t i = 1; i <= la; i++) {
		int best = cur[0] = (int)i;
		for (size_t j = 1; j <= lb; j++) {
			int sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
			int del = prev[j] + 1, ins = cur[j - 1] + 1;
			cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
			best = cur[j] < best ? cur[j] : best;
		}
		if (best > cap)
			return cap + 1;
		memcpy(prev, cur, sizeof(prev));
	}
	return prev[lb] > cap ? cap + 1 : prev[lb];
}

int conf_key_index(const struct block_def *def, const char *name)
{
	for (int i = 0; def->keys[i].name; i++)
		if (strcmp(def->keys[i].name, name) == 0)
			return i;
	return -1;
}

bool conf_seen(const struct block_def *def, const struct block_seen *b, const char *name)
{
	int i = conf_key_index(def, name);
	BUG_ON(i < 0);
	return b->mask & (UINT64_C(1) << i);
}

static int unknown_key(struct conf_ctx *ctx, const config_setting_t *s, const char *path,
		       const struct block_def *def)
{
	const char *name = config_setting_name(s), *best = NULL;
	int best_d = 3;
	for (const struct key_def *k = def->keys; k->name; k++) {
		int d = conf_edit_distance(name, k->name, 2);
		if (d < best_d) {
			best_d = d;
			best = k->name;
		}
	}
	if (best)
		return conf_error_at(ctx, s, path, "unknown key (did you mean \"%s\"?)", best);
	return conf_error_at(ctx, s, path, "unknown key");
}

static const char *type_name(enum key_kind kind)
{
	switch (kind) {
	case K_STRING:
	case K_OPTSTR:
	case K_FOLDER:
	case K_PATH:
	case K_ENUM:
	case K_FPR:
		return "a string";
	case K_INT:
		return "an integer";
	case K_BOOL:
		return "true or false";
	case K_STRLIST:
		return "a list of strings";
	case K_SHARE:
		return "a number";
	case K_BLOCK:
	case K_GROUP:
		return "a block { ... }";
	case K_CUSTOM:
		break;
	}
	BUG("no type name for kind %d", (int)kind);
}

static int wrong_type(struct conf_ctx *ctx, const config_setting_t *s, const char *path,
		      enum key_kind kind)
{
	return conf_error_at(ctx, s, path, "expected %s", type_name(kind));
}

/* A string-valued key: the string, or NULL after a type error. */
static const char *get_string(struct conf_ctx *ctx, const config_setting_t *s, const char *path,
			      enum key_kind kind)
{
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		wrong_type(ctx, s, path, kind);
		return NULL;
	}
	return config_setting_get_string(s);
}

static int read_string(struct conf_ctx *ctx, config_setting_t *s, const char *path,
		       const struct key_def *k, char **dst)
{
	const char *v = get_string(ctx, s, path, k->kind);
	if (!v)
		return -EINVAL;
	if (!v[0] && k->kind == K_STRING)
		return conf_error_at(ctx, s, path, "must not be empty");
	xfree(dst);
	if (v[0])
		*dst = xstrdup(v);
	return 0;
}

static bool folder_ok(const char *v)
{
	if (v[0] == '/')
		return false;
	for (const char *p = v; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return false;
	for (const char *c = v; c; c = strchr(c, '/')) {
		c += c[0] == '/';
		size_t n = strcspn(c, "/");
		if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return false;
	}
	return true;
}

static int read_folder(struct conf_ctx *ctx, config_setting_t *s, const char *path,
		       const struct key_def *k, char **dst)
{
	const char *v = get_string(ctx, s, path, k->kind);
	if (!v)
		return -EINVAL;
	if (!v[0] && k->min > 0)
		return conf_error_at(ctx, s, path, "must not be empty");
	if (v[0] && !folder_ok(v))
		return conf_error_at(
		    ctx, s, path,
		    "must be a folder name under the account's maildir (no leading "
		    "or doubled \"/\", no \".\" or \"..\" parts, no control "
		    "characters)");
	xfree(dst);
	*dst = xstrdup(v);
	return 0;
}

static int read_path(struct conf_ctx *ctx, config_setting_t *s, const char *path,
		     const struct key_def *k, char **dst)
{
	const char *v = get_string(ctx, s, path, k->kind);
	if (!v)
		return -EINVAL;
	struct err e = { 0 };
	char *x = config_expand_path(v, &e);
	if (!x)
		return conf_error_at(ctx, s, path, "%s", e.msg);
	if (x[0] != '/') {
		char q[96];
		conf_quote(q, sizeof(q), v);
		free(x);
		return conf_error_at(ctx, s, path,
				     "must be an absolute path or start with ~ (got %s)", q);
	}
	conf_path_tidy(x);
	xfree(dst);
	*dst = x;
	return 0;
}

static int read_int(struct conf_ctx *ctx, config_setting_t *s, const char *path,
		    const struct key_def *k, int *dst)
{
	int t = config_setting_type(s);
	if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
		return wrong_type(ctx, s, path, k->kind);
	long long v = config_setting_get_int64(s);
	if (v < k->min || v > k->max)
		return conf_error_at(ctx, s, path, "must be between %lld and %lld (got %lld)",
				     k->min, k->max, v);
	*dst = (int)v;
	return 0;
}

static int read_bool(struct conf_ctx *ctx, config_setting_t *s, const char *path,
		     const struct key_def *k, bool *dst)
{
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return wrong_type(ctx, s, path, k->kind);
	*dst = config_setting_get_bool(s);
	return 0;
}

static int read_enum(struct conf_ctx *ctx, config_setting_t *s, const char *path,
		     const struct key_def *k, int *dst)
{
	const char *v = get_string(ctx, s, path, k->kind);
	if (!v)
		return -EINVAL;
	for (int i = 0; k->values[i]; i++) {
		if (strcmp(v, k->values[i]) == 0) {
			*dst = i;
			return 0;
		}
	}
	char q[96], list[256] = "";
	size_t o = 0;
	conf_quote(q, sizeof(q), v);
	for (int i = 0; k->values[i]; i++)
		o += (size_t)snprintf(list + o, sizeof(list) - o, "%s\"%s\"",
				      i == 0             ? ""
				      : k->values[i + 1] ? ", "
							 : " or ",
				      k->values[i]);
	return conf_error_at(ctx, s, path, "unknown value %s (expected %s)", q, list);
}

static int read_strlist(struct conf_ctx *ctx, config_setting_t *s, const char *path,
			const struct key_def *k, char ***dst)
{
	if (!config_setting_is_array(s) && !config_setting_is_list(s))
		return wrong_type(ctx, s, path, k->kind);
	int n = config_setting_length(s);
	for (int i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		if (config_setting_type(e) != CONFIG_TYPE_STRING)
			return conf_error(ctx, config_setting_source_line(e), path, k->name,
					  "expected a list of strings");
		if (!config_setting_get_string(e)[0])
			return conf_error(ctx, config_setting_source_line(e), path, k->name,
					  "list entries must not be empty");
	}
	conf_free_strv(dst);
	*dst = xcalloc((size_t)n + 1, sizeof(char *));
	for (int i = 0; i < n; i++)
		(*dst)[i] =
		    xstrdup(config_setting_get_string(config_setting_get_elem(s, (unsigned)i)));
	return 0;
}

static int read_share(struct conf_ctx *ctx, config_setting_t *s, const char *path,
		      const struct key_def *k, double *dst)
{
	double v;
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		v = (double)config_setting_get_int64(s);
		break;
	case CONFIG_TYPE_FLOAT:
		v = config_setting_get_float(s);
		break;
	default:
		return wrong_type(ctx, s, path, k->kind);
	}
	if (!(v > 0 && v <= 1))
		return conf_error_at(ctx, s, path, "must be greater than 0 and at most 1 (got %g)",
				     v);
	*dst = v;
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* "sha256:" and 32 bytes in hex, either run together or as colon-separated
 * pairs (the way openssl x509 -fingerprint prints them), any case. */
static bool parse_fingerprint(const char *v, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	if (strncasecmp(v, "sha256:", 7) != 0)
		return false;
	v += 7;
	size_t len = strlen(v);
	bool colons = len == 32 * 3 - 1;
	if (len != 64 && !colons)
		return false;
	for (size_t i = 0; i < 32; i++) {
		const char *p = v + (colons ? i * 3 : i * 2);
		int hi = hexval(p[0]), lo = hexval(p[1]);
		if (hi < 0 || lo < 0 || (colons && i < 31 && p[2] != ':'))
			return false;
		out[2 * i] = hex[hi];
		out[2 * i + 1] = hex[lo];
	}
	out[64] = '\0';
	return true;
}

static int read_fingerprint(struct conf_ctx *ctx, config_setting_t *s, const char *path,
			    const struct key_def *k, char **dst)
{
	char fp[65];
	const char *v = get_string(ctx, s, path, k->kind);
	if (!v)
		return -EINVAL;
	if (!parse_fingerprint(v, fp))
		return conf_error_at(ctx, s, path,
				     "must be \"sha256:\" followed by 64 hex digits (optionally "
				     "as colon-separated pairs)");
	xfree(dst);
	*dst = xstrdup(fp);
	return 0;
}

static int read_block(struct conf_ctx *ctx, config_setting_t *s, const char *path,
		      const struct key_def *k, void *field)
{
	char sub[CONF_PATH_MAX];
	if (!config_setting_is_group(s))
		return wrong_type(ctx, s, path, k->kind);
	snprintf(sub, sizeof(sub), "%s%s%s", path, path[0] ? "." : "", k->name);
	if (k->kind == K_GROUP)
		return conf_walk_block(ctx, s, sub, k->sub, field);
	void **slot = field;
	BUG_ON(*slot);
	*slot = xcalloc(1, k->sub->size);
	if (k->sub->defaults)
		k->sub->defaults(*slot);
	return conf_walk_block(ctx, s, sub, k->sub, *slot);
}

static int read_key(struct conf_ctx *ctx, config_setting_t *s, const char *path,
		    const struct key_def *k, void *obj)
{
	void *field = (char *)obj + k->off;
	switch (k->kind) {
	case K_STRING:
	case K_OPTSTR:
		return read_string(ctx, s, path, k, field);
	case K_FOLDER:
		return read_folder(ctx, s, path, k, field);
	case K_PATH:
		return read_path(ctx, s, path, k, field);
	case K_INT:
		return read_int(ctx, s, path, k, field);
	case K_BOOL:
		return read_bool(ctx, s, path, k, field);
	case K_ENUM:
		return read_enum(ctx, s, path, k, field);
	case K_STRLIST:
		return read_strlist(ctx, s, path, k, field);
	case K_SHARE:
		return read_share(ctx, s, path, k, field);
	case K_FPR:
		return read_fingerprint(ctx, s, path, k, field);
	case K_BLOCK:
	case K_GROUP:
		return read_block(ctx, s, path, k, field);
	case K_CUSTOM:
		return k->read(ctx, s, path, obj);
	}
	BUG("unknown key kind %d", (int)k->kind);
}

int conf_walk_block(struct conf_ctx *ctx, config_setting_t *s, const char *path,
		    const struct block_def *def, void *obj)
{
	struct block_seen b = { .s = s, .path = path };
	int n = config_setting_length(s);
	for (int i = 0; i < n; i++) {
		config_setting_t *m = config_setting_get_elem(s, (unsigned)i);
		int ki = conf_key_index(def, config_setting_name(m));
		if (ki < 0)
			return unknown_key(ctx, m, path, def);
		BUG_ON(ki >= 64);
		b.mask |= UINT64_C(1) << ki;
		int rc = read_key(ctx, m, path, &def->keys[ki], obj);
		if (rc < 0)
			return rc;
	}
	return def->check ? def->check(ctx, &b, obj) : 0;
}
