/* One line per event on stderr, with a level. Under systemd (stderr is the
 * journal stream named by $JOURNAL_STREAM) each line carries a <N> syslog
 * priority prefix and no timestamp, since the journal adds its own.
 * Callers never pass secrets: protocol traces redact them before logging. */
#ifndef MF_CORE_LOG_H
#define MF_CORE_LOG_H

#include <stdbool.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG, LOG_TRACE };

/* Decides the output format by looking at $JOURNAL_STREAM and stderr. */
void log_init(enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
bool log_enabled(enum log_level level);
/* Parses "error" .. "trace"; returns -1 for anything else. */
int log_level_parse(const char *name);
const char *log_level_name(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
	do {                                                                                       \
		if (log_enabled(LOG_DEBUG))                                                        \
			log_msg(LOG_DEBUG, __VA_ARGS__);                                           \
	} while (0)
#define log_trace(...)                                                                             \
	do {                                                                                       \
		if (log_enabled(LOG_TRACE))                                                        \
			log_msg(LOG_TRACE, __VA_ARGS__);                                           \
	} while (0)

#endif
