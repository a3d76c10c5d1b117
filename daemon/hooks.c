#include "hooks.h"

#include "core/buf.h"
#include "core/log.h"
#include "core/xalloc.h"

#include <signal.h>
#include <string.h>

struct hook {
	uv_loop_t *loop;
	char *account, *event, *command;
	/* gathered for the next run */
	bool wanted;
	unsigned count;
	struct buf folders;
	/* the running one */
	uv_process_t proc;
	uv_timer_t timer;
	bool running, freed;
	unsigned handles;
};

struct hook *hook_new(uv_loop_t *loop, const char *account, const char *event,
		      const char *command)
{
	struct hook *h = xcalloc(1, sizeof(*h));
	h->loop = loop;
	h->account = xstrdup(account);
	h->event = xstrdup(event);
	h->command = command && command[0] ? xstrdup(command) : NULL;
	uv_timer_init(loop, &h->timer);
	h->timer.data = h;
	h->handles = 1;
	return h;
}

static void release(struct hook *h)
{
	if (--h->handles > 0)
		return;
	free(h->account);
	free(h->event);
	free(h->command);
	buf_free(&h->folders);
	free(h);
}

static void on_handle_closed(uv_handle_t *handle)
{
	release(handle->data);
}

static void run(struct hook *h);

static void on_exit_cb(uv_process_t *p, int64_t status, int signal)
{
	struct hook *h = p->data;
	uv_timer_stop(&h->timer);
	h->running = false;
	if (signal)
		log_warn("account=%s hook=%s event=hook-failed killed by signal %d%s", h->account,
			 h->event, signal, signal == SIGKILL ? " (timed out)" : "");
	else if (status)
		log_warn("account=%s hook=%s event=hook-failed exit status %lld", h->account,
			 h->event, (long long)status);
	else
		log_debug("account=%s hook=%s event=hook-done", h->account, h->event);
	uv_close((uv_handle_t *)p, on_handle_closed);
	if (h->wanted && !h->freed)
		run(h);
}

static void on_timeout(uv_timer_t *t)
{
	struct hook *h = t->data;
	if (h->running)
		uv_process_kill(&h->proc, SIGKILL);
}

static void run(struct hook *h)
{
	char count[32];
	snprintf(count, sizeof(count), "%u", h->count);
	char *env_account = xasprintf("MAILFERRY_ACCOUNT=%s", h->account);
	char *env_event = xasprintf("MAILFERRY_EVENT=%s", h->event);
	char *env_new = xasprintf("MAILFERRY_NEW=%s", count);
	char *env_folders = xasprintf("MAILFERRY_FOLDERS=%s", buf_str(&h->folders));
	/* The daemon's environment (PATH, HOME, DISPLAY for notify-send), plus ours. */
	extern char **environ;
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = xcalloc(n + 5, sizeof(char *));
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "MAILFERRY_", 10) != 0)
			env[k++] = environ[i];
	env[k++] = env_account, env[k++] = env_event, env[k++] = env_new, env[k++] = env_folders;
	char *args[] = { "/bin/sh", "-c", h->command, NULL };
	uv_stdio_container_t stdio[3] = { { .flags = UV_IGNORE },
					  { .flags = UV_INHERIT_FD, .data.fd = 2 },
					  { .flags = UV_INHERIT_FD, .data.fd = 2 } };
	uv_process_options_t o = { .exit_cb = on_exit_cb, .file = "/bin/sh", .args = args,
				   .env = env, .stdio = stdio, .stdio_count = 3 };
	h->proc.data = h;
	int rc = uv_spawn(h->loop, &h->proc, &o);
	free(env);
	free(env_account);
	free(env_event);
	free(env_new);
	free(env_folders);
	h->wanted = false;
	h->count = 0;
	buf_reset(&h->folders);
	if (rc < 0) {
		log_warn("account=%s hook=%s event=hook-failed cannot start /bin/sh: %s", h->account,
			 h->event, uv_strerror(rc));
		uv_close((uv_handle_t *)&h->proc, NULL);
		return;
	}
	h->running = true;
	h->handles++;
	uv_timer_start(&h->timer, on_timeout, HOOK_TIMEOUT_S * 1000, 0);
	log_debug("account=%s hook=%s event=hook-start", h->account, h->event);
}

/* Whether the newline-separated list holds the line f[0..len). */
static bool has_line(const char *list, const char *f, size_t len)
{
	while (*list) {
		size_t n = strcspn(list, "\n");
		if (n == len && strncmp(list, f, len) == 0)
			return true;
		list += n + (list[n] == '\n');
	}
	return false;
}

void hook_trigger(struct hook *h, unsigned count, const char *folders)
{
	if (!h->command)
		return;
	h->wanted = true;
	h->count += count;
	while (folders && *folders) {
		size_t len = strcspn(folders, "\n");
		if (!has_line(buf_str(&h->folders), folders, len)) {
			if (h->folders.len)
				buf_putc(&h->folders, '\n');
			buf_append(&h->folders, folders, len);
		}
		folders += len + (folders[len] == '\n');
	}
	if (!h->running)
		run(h);
}

void hook_free(struct hook **hp)
{
	struct hook *h = *hp;
	if (!h)
		return;
	*hp = NULL;
	h->freed = true;
	if (h->running)
		uv_process_kill(&h->proc, SIGKILL);
	uv_close((uv_handle_t *)&h->timer, on_handle_closed);
}
