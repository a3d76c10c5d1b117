#include "log.h"

#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>

static enum log_level current = LOG_INFO;
static bool to_journal;

static const char *const names[] = { "error", "warn", "info", "debug", "trace" };
/* syslog priorities: err, warning, info, debug, debug */
static const int priorities[] = { 3, 4, 6, 7, 7 };

/* systemd sets JOURNAL_STREAM=DEV:INODE for the stream it connected; it only
 * counts if stderr still is that stream (a shell may have redirected it). */
static bool stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2)
		return false;
	if (fstat(2, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_init(enum log_level level)
{
	current = level;
	to_journal = stderr_is_journal();
}

void log_set_level(enum log_level level)
{
	current = level;
}

enum log_level log_get_level(void)
{
	return current;
}

bool log_enabled(enum log_level level)
{
	return level <= current;
}

int log_level_parse(const char *name)
{
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(name, names[i]) == 0)
			return (int)i;
	return -1;
}

const char *log_level_name(enum log_level level)
{
	return names[level];
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	if (!log_enabled(level))
		return;
	char line[4096];
	size_t n;
	if (to_journal) {
		n = (size_t)snprintf(line, sizeof(line), "<%d>", priorities[level]);
	} else {
		struct timeval tv;
		struct tm tm;
		gettimeofday(&tv, NULL);
		localtime_r(&tv.tv_sec, &tm);
		n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
		n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ld %s ",
				      (long)tv.tv_usec / 1000, names[level]);
	}
	char msg[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Messages carry text from servers: a newline would forge a log line and
	 * an escape sequence would drive the terminal, so control characters are
	 * written out. One write per line keeps lines whole when several processes
	 * share stderr. */
	struct buf b = { 0 };
	buf_append(&b, line, n);
	buf_put_visible(&b, msg);
	buf_putc(&b, '\n');
	fwrite(b.data, 1, b.len, stderr);
	buf_free(&b);
}
