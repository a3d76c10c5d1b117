/* The systemd notify protocol (sd_notify(3), spoken directly): READY=1,
 * STATUS=..., RELOADING=1, STOPPING=1 and watchdog pings, as datagrams to
 * $NOTIFY_SOCKET. Without that variable (not run by systemd) it does
 * nothing. */
#ifndef MF_NOTIFY_H
#define MF_NOTIFY_H

#include <stdbool.h>
#include <uv.h>

/* Reads $NOTIFY_SOCKET and $WATCHDOG_USEC, and starts the watchdog pings on
 * the loop (at half the interval) when systemd asked for them. */
void notify_start(uv_loop_t *loop);
void notify_stop(void);

void notify_ready(void);
/* A one-line summary for `systemctl status`. */
void notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* With MONOTONIC_USEC, as Type=notify-reload wants. */
void notify_reloading(void);
void notify_stopping(void);
bool notify_enabled(void);

#endif
