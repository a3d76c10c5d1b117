#include "notify.h"

#include "core/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_un addr;
static socklen_t addr_len;
static uv_timer_t watchdog;
static bool watchdog_on;

static void send_message(const char *msg)
{
	if (!addr_len)
		return;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&addr, addr_len) < 0)
		log_debug("event=notify-failed %s", strerror(errno));
	close(fd);
}

static void on_watchdog(uv_timer_t *t)
{
	(void)t;
	send_message("WATCHDOG=1");
}

void notify_start(uv_loop_t *loop)
{
	const char *path = getenv("NOTIFY_SOCKET");
	if (!path || !path[0] || strlen(path) >= sizeof(addr.sun_path))
		return;
	addr.sun_family = AF_UNIX;
	memcpy(addr.sun_path, path, strlen(path));
	/* "@name" is an abstract socket: a leading NUL, no terminating one. */
	if (path[0] == '@')
		addr.sun_path[0] = '\0';
	addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
	const char *wd = getenv("WATCHDOG_USEC");
	unsigned long long usec = wd ? strtoull(wd, NULL, 10) : 0;
	const char *pid = getenv("WATCHDOG_PID");
	if (pid && strtol(pid, NULL, 10) != (long)getpid())
		usec = 0; /* meant for another process */
	if (usec >= 2000) {
		uv_timer_init(loop, &watchdog);
		uv_timer_start(&watchdog, on_watchdog, 0, usec / 2000);
		watchdog_on = true;
	}
}

void notify_stop(void)
{
	if (watchdog_on)
		uv_close((uv_handle_t *)&watchdog, NULL);
	watchdog_on = false;
}

bool notify_enabled(void)
{
	return addr_len != 0;
}

void notify_ready(void)
{
	send_message("READY=1");
}

void notify_status(const char *fmt, ...)
{
	char msg[512] = "STATUS=";
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg + 7, sizeof(msg) - 7, fmt, ap);
	va_end(ap);
	for (char *p = msg; *p; p++)
		if (*p == '\n')
			*p = ' '; /* one line */
	send_message(msg);
}

void notify_reloading(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	char msg[96];
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
		 (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
	send_message(msg);
}

void notify_stopping(void)
{
	send_message("STOPPING=1");
}
