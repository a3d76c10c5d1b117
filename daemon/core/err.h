/* A small error record: a class that decides what happens next (retry soon,
 * wait for the user, give up) and a sentence a user can act on.
 * Functions that can fail return 0 or a negative errno (the UV_E* space) and
 * fill a struct err; the layer that decides what to do logs it, once. */
#ifndef MF_CORE_ERR_H
#define MF_CORE_ERR_H

enum err_class {
	ERR_NONE = 0,
	ERR_TEMP,   /* network, timeout, server busy: retry with backoff */
	ERR_AUTH,   /* credentials refused: retry slowly, tell the user */
	ERR_PERM,   /* the server or the data says no: do not retry blindly */
	ERR_CONFIG, /* the user's config is wrong */
	ERR_LOCAL,  /* our side: disk full, permissions */
};

struct err {
	enum err_class cls;
	int code; /* the negative errno err_set was given */
	char msg[512];
};

/* Sets e (if not NULL) and returns rc, so callers can `return err_set(...)`. */
int err_set(struct err *e, int rc, enum err_class cls, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Prefixes the existing message with "prefix: ", keeping the class. */
void err_prefix(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void err_clear(struct err *e);
const char *err_class_name(enum err_class cls);

#endif
