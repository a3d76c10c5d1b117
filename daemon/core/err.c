#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int err_set(struct err *e, int rc, enum err_class cls, const char *fmt, ...)
{
	if (!e)
		return rc;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	e->cls = cls;
	e->code = rc;
	return rc;
}

void err_prefix(struct err *e, const char *fmt, ...)
{
	if (!e)
		return;
	char prefix[256], old[sizeof(e->msg)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, e->msg, sizeof(old));
	/* Truncation keeps the start, which names where the error happened. */
	int n = snprintf(e->msg, sizeof(e->msg), "%s: ", prefix);
	if (n > 0 && (size_t)n < sizeof(e->msg)) {
		size_t room = sizeof(e->msg) - (size_t)n - 1, len = strlen(old);
		len = len < room ? len : room;
		memcpy(e->msg + n, old, len);
		e->msg[(size_t)n + len] = '\0';
	}
}

void err_clear(struct err *e)
{
	if (!e)
		return;
	e->cls = ERR_NONE;
	e->code = 0;
	e->msg[0] = '\0';
}

const char *err_class_name(enum err_class cls)
{
	switch (cls) {
	case ERR_NONE:
		return "none";
	case ERR_TEMP:
		return "temporary";
	case ERR_AUTH:
		return "authentication";
	case ERR_PERM:
		return "permanent";
	case ERR_CONFIG:
		return "config";
	case ERR_LOCAL:
		return "local";
	}
	return "unknown";
}
