#include "daemon.h"

#include "core/log.h"

#include <signal.h>

struct daemon {
	uv_loop_t *loop;
	struct config **cfg;
	const char *path;
	int forced_level; /* from -v/-q, or -1: the config's log_level */
	uv_signal_t sigterm, sigint, sighup;
};

static void on_stop(uv_signal_t *h, int signum)
{
	struct daemon *d = h->data;
	log_info("event=stop signal=%s", signum == SIGTERM ? "TERM" : "INT");
	uv_signal_stop(&d->sigterm);
	uv_signal_stop(&d->sigint);
	uv_signal_stop(&d->sighup);
	uv_stop(d->loop);
}

/* A bad config on reload is reported and the running one kept: a typo must
 * not stop the mail. */
static void on_reload(uv_signal_t *h, int signum)
{
	struct daemon *d = h->data;
	(void)signum;
	struct config *fresh = NULL;
	struct err err = { 0 };
	if (config_load(d->path, &fresh, &err) < 0) {
		log_error("event=reload result=failed keeping the running config: %s", err.msg);
		return;
	}
	config_free(d->cfg);
	*d->cfg = fresh;
	if (d->forced_level < 0)
		log_set_level((enum log_level)fresh->general.log_level);
	log_info("event=reload result=ok accounts=%zu", fresh->n_accounts);
}

static void close_handle(uv_signal_t *h)
{
	uv_close((uv_handle_t *)h, NULL);
}

int daemon_run(uv_loop_t *loop, struct config **cfg, const char *path, int forced_level)
{
	struct daemon d = { .loop = loop, .cfg = cfg, .path = path, .forced_level = forced_level };
	uv_signal_init(loop, &d.sigterm);
	uv_signal_init(loop, &d.sigint);
	uv_signal_init(loop, &d.sighup);
	d.sigterm.data = d.sigint.data = d.sighup.data = &d;
	uv_signal_start(&d.sigterm, on_stop, SIGTERM);
	uv_signal_start(&d.sigint, on_stop, SIGINT);
	uv_signal_start(&d.sighup, on_reload, SIGHUP);
	log_info("event=start version=%s config=%s accounts=%zu", MF_VERSION, path,
		 (*cfg)->n_accounts);
	uv_run(loop, UV_RUN_DEFAULT);
	close_handle(&d.sigterm);
	close_handle(&d.sigint);
	close_handle(&d.sighup);
	uv_run(loop, UV_RUN_DEFAULT);
	log_info("event=exit");
	return 0;
}
