#include "hooks.h"

#include "core/buf.h"
#include "core/log.h"
#include "core/xalloc.h"

#include <signal.h>
#include <string.h>

struct hook {
	uv_loop_t *loop;
	char *account, *event, *command;
	unsigned timeout_s;
	/* gathered for the next run */
	bool wanted;
	unsigned count;
	struct buf folders;
	/* the running one: proc is open from its spawn to its close callback */
	uv_process_t proc;
	uv_timer_t timeout;                    /* kills a run that takes too long */
	uv_timer_t spacing;                    /* active: too soon after the last start */
	bool running, alive, timed_out, freed; /* alive: spawned and not exited */
	unsigned handles; /* open handles; the hook is freed when none is left */
};

static void run(struct hook *h);

struct hook *hook_new(uv_loop_t *loop, const char *account, const char *event, const char *command,
		      unsigned timeout_s)
{
	struct hook *h = xcalloc(1, sizeof(*h));
	h->loop = loop;
	h->account = xstrdup(account);
	h->event = xstrdup(event);
	h->command = command && command[0] ? xstrdup(command) : NULL;
	h->timeout_s = timeout_s;
	uv_timer_init(loop, &h->timeout);
	uv_timer_init(loop, &h->spacing);
	h->timeout.data = h->spacing.data = h;
	h->handles = 2;
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

/* The process handle is only reusable once closed: the next run starts here. */
static void on_proc_closed(uv_handle_t *handle)
{
	struct hook *h = handle->data;
	h->running = false;
	if (h->wanted && !h->freed && !uv_is_active((uv_handle_t *)&h->spacing))
		run(h);
	release(h);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int signal)
{
	struct hook *h = p->data;
	h->alive = false;
	uv_timer_stop(&h->timeout);
	if (h->timed_out)
		log_warn("account=%s hook=%s event=hook-failed timed out after %u s: killed",
			 h->account, h->event, h->timeout_s);
	else if (signal)
		log_warn("account=%s hook=%s event=hook-failed killed by signal %d", h->account,
			 h->event, signal);
	else if (status)
		log_warn("account=%s hook=%s event=hook-failed exit status %lld", h->account,
			 h->event, (long long)status);
	else
		log_debug("account=%s hook=%s event=hook-done", h->account, h->event);
	uv_close((uv_handle_t *)p, on_proc_closed);
}

/* The command runs in its own process group (UV_PROCESS_DETACHED): a shell
 * that started a pipeline or a background job is killed with all of it. */
static void kill_run(struct hook *h)
{
	if (h->alive)
		kill(-h->proc.pid, SIGKILL);
}

static void on_timeout(uv_timer_t *t)
{
	struct hook *h = t->data;
	h->timed_out = true;
	kill_run(h);
}

static void on_spacing(uv_timer_t *t)
{
	struct hook *h = t->data;
	if (h->wanted && !h->running)
		run(h);
}

/* The daemon's environment (PATH, HOME, DISPLAY for notify-send), less any
 * MAILFERRY_ variable, plus the four of this run. Frees nothing of environ. */
static char **hook_env(struct hook *h, char *ours[4])
{
	extern char **environ;
	ours[0] = xasprintf("MAILFERRY_ACCOUNT=%s", h->account);
	ours[1] = xasprintf("MAILFERRY_EVENT=%s", h->event);
	ours[2] = xasprintf("MAILFERRY_NEW=%u", h->count);
	ours[3] = xasprintf("MAILFERRY_FOLDERS=%s", buf_str(&h->folders));
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = xcalloc(n + 5, sizeof(char *));
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "MAILFERRY_", 10) != 0)
			env[k++] = environ[i];
	for (size_t i = 0; i < 4; i++)
		env[k++] = ours[i];
	return env;
}

static void run(struct hook *h)
{
	char *ours[4];
	char **env = hook_env(h, ours);
	char *args[] = { "/bin/sh", "-c", h->command, NULL };
	uv_stdio_container_t stdio[3] = { { .flags = UV_IGNORE },
					  { .flags = UV_INHERIT_FD, .data.fd = 2 },
					  { .flags = UV_INHERIT_FD, .data.fd = 2 } };
	uv_process_options_t o = { .exit_cb = on_exit_cb,
				   .file = "/bin/sh",
				   .args = args,
				   .env = env,
				   .stdio = stdio,
				   .stdio_count = 3,
				   .flags = UV_PROCESS_DETACHED };
	h->proc.data = h;
	int rc = uv_spawn(h->loop, &h->proc, &o);
	free(env);
	for (size_t i = 0; i < 4; i++)
		free(ours[i]);
	log_debug("account=%s hook=%s event=hook-start new=%u", h->account, h->event, h->count);
	h->wanted = false;
	h->count = 0;
	buf_reset(&h->folders);
	/* The handle needs closing whether or not the spawn worked. */
	h->running = true;
	h->timed_out = false;
	h->handles++;
	uv_timer_start(&h->spacing, on_spacing, HOOK_SPACING_MS, 0);
	if (rc < 0) {
		log_warn("account=%s hook=%s event=hook-failed cannot start /bin/sh: %s",
			 h->account, h->event, uv_strerror(rc));
		uv_close((uv_handle_t *)&h->proc, on_proc_closed);
		return;
	}
	h->alive = true;
	uv_timer_start(&h->timeout, on_timeout, (uint64_t)h->timeout_s * 1000, 0);
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
	if (!h->running && !uv_is_active((uv_handle_t *)&h->spacing))
		run(h);
}

void hook_free(struct hook **hp)
{
	struct hook *h = *hp;
	if (!h)
		return;
	*hp = NULL;
	h->freed = true;
	kill_run(h);
	uv_close((uv_handle_t *)&h->timeout, on_handle_closed);
	uv_close((uv_handle_t *)&h->spacing, on_handle_closed);
}
