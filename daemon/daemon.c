#include "daemon.h"

#include "account.h"
#include "control.h"
#include "core/buf.h"
#include "core/log.h"
#include "notify.h"
#include "core/xalloc.h"

#include <signal.h>
#include <string.h>

struct daemon {
	uv_loop_t *loop;
	struct config **cfg;
	const char *path;
	int forced_level; /* from -v/-q, or -1: the config's log_level */
	uv_signal_t sigterm, sigint, sighup;
	struct control *control;
	struct account **accounts;
	size_t naccounts;
	unsigned stopping;     /* accounts still stopping */
	struct config *retired; /* the config of the accounts a reload stops */
	struct config *pending; /* a config that arrived while a reload was under way */
	bool exiting, reloading;
	size_t ready; /* accounts that logged in or ended a pass: READY once all did */
	int status;
};

/* The one-line summary systemd shows: each account's state. */
static void update_status(struct daemon *d)
{
	struct buf b = { 0 };
	for (size_t i = 0; i < d->naccounts; i++) {
		struct account_status s;
		account_status(d->accounts[i], &s);
		buf_printf(&b, "%s%s: %s", i ? ", " : "", s.name, s.state);
		if (strcmp(s.push, "none") != 0)
			buf_printf(&b, " (%s)", s.push);
	}
	notify_status("%s", d->naccounts ? buf_str(&b) : "no accounts");
	buf_free(&b);
}

static void on_changed(void *ctx, struct account *a)
{
	(void)a;
	update_status(ctx);
}

/* READY=1 once every account logged in, or ended its first pass without a
 * connection (offline, backing off): neither a large first sync nor a
 * missing network may keep the unit starting until systemd gives up. */
static void on_ready(void *ctx, struct account *a)
{
	struct daemon *d = ctx;
	(void)a;
	if (++d->ready == d->naccounts)
		notify_ready();
	update_status(d);
}

static void start_accounts(struct daemon *d)
{
	const struct config *cfg = *d->cfg;
	struct account_events ev = { on_changed, on_ready, d };
	d->accounts = xcalloc(cfg->n_accounts + 1, sizeof(*d->accounts));
	d->naccounts = 0;
	d->ready = 0;
	for (size_t i = 0; i < cfg->n_accounts; i++) {
		const struct account_conf *ac = &cfg->accounts[i];
		d->accounts[d->naccounts++] = account_new(d->loop, ac, &cfg->general, &ev);
	}
	size_t n = d->naccounts;
	for (size_t i = 0; i < n; i++)
		account_start(d->accounts[i]);
	if (n == 0)
		notify_ready();
	update_status(d);
}

static void close_signals(struct daemon *d)
{
	uv_close((uv_handle_t *)&d->sigterm, NULL);
	uv_close((uv_handle_t *)&d->sigint, NULL);
	uv_close((uv_handle_t *)&d->sighup, NULL);
}

/* Every account of the old set has stopped: exit, or start the new set. */
static void on_account_stopped(void *ctx)
{
	struct daemon *d = ctx;
	if (--d->stopping > 0)
		return;
	free(d->accounts);
	d->accounts = NULL;
	d->naccounts = 0;
	if (d->exiting) {
		close_signals(d);
		notify_stop();
		return;
	}
	config_free(&d->retired);
	if (d->pending) { /* a newer config came meanwhile: start with that one */
		config_free(d->cfg);
		*d->cfg = d->pending;
		d->pending = NULL;
	}
	d->reloading = false;
	start_accounts(d);
}

static void stop_accounts(struct daemon *d)
{
	d->stopping = (unsigned)d->naccounts + 1; /* held until all are asked */
	for (size_t i = 0; i < d->naccounts; i++)
		account_stop(d->accounts[i], on_account_stopped, d);
	on_account_stopped(d);
}

static void stop(void *ctx)
{
	struct daemon *d = ctx;
	if (d->exiting)
		return;
	d->exiting = true;
	notify_stopping();
	uv_signal_stop(&d->sigterm);
	uv_signal_stop(&d->sigint);
	uv_signal_stop(&d->sighup);
	control_stop(&d->control);
	if (d->reloading)
		return; /* the accounts are stopping already; exit when they are done */
	stop_accounts(d);
}

static void on_stop(uv_signal_t *h, int signum)
{
	log_info("event=stop signal=%s", signum == SIGTERM ? "TERM" : "INT");
	stop(h->data);
}

/* A bad config on reload is reported and the running one kept: a typo must
 * not stop the mail. A good one replaces the accounts. */
static int reload(void *ctx, struct err *err)
{
	struct daemon *d = ctx;
	struct config *fresh = NULL;
	if (d->exiting)
		return err_set(err, -EBUSY, ERR_TEMP, "the daemon is stopping");
	if (config_load(d->path, &fresh, err) < 0) {
		log_error("event=reload result=failed keeping the running config: %s", err->msg);
		return -EINVAL;
	}
	if (d->reloading) {
		config_free(&d->pending);
		d->pending = fresh;
		log_debug("event=reload the new config waits for the reload under way");
		log_info("event=reload result=ok accounts=%zu", fresh->n_accounts);
		return 0;
	}
	notify_reloading();
	d->retired = *d->cfg;
	*d->cfg = fresh;
	if (d->forced_level < 0)
		log_set_level((enum log_level)fresh->general.log_level);
	log_info("event=reload result=ok accounts=%zu", fresh->n_accounts);
	d->reloading = true;
	stop_accounts(d);
	return 0;
}

static void on_reload(uv_signal_t *h, int signum)
{
	struct err err;
	(void)signum;
	reload(h->data, &err);
}

static struct account *const *list_accounts(void *ctx, size_t *n)
{
	struct daemon *d = ctx;
	*n = d->naccounts;
	return d->accounts;
}

static const struct control_ops control_ops = { list_accounts, reload, stop };

int daemon_run(uv_loop_t *loop, struct config **cfg, const char *path, int forced_level)
{
	struct daemon d = { .loop = loop, .cfg = cfg, .path = path, .forced_level = forced_level };
	struct err err;
	notify_start(loop);
	d.control = control_start(loop, (*cfg)->general.control_socket, &control_ops, &d, &err);
	if (!d.control) {
		log_error("event=start result=failed %s", err.msg);
		notify_status("not started: %s", err.msg);
		notify_stop();
		return 1;
	}
	uv_signal_init(loop, &d.sigterm);
	uv_signal_init(loop, &d.sigint);
	uv_signal_init(loop, &d.sighup);
	d.sigterm.data = d.sigint.data = d.sighup.data = &d;
	uv_signal_start(&d.sigterm, on_stop, SIGTERM);
	uv_signal_start(&d.sigint, on_stop, SIGINT);
	uv_signal_start(&d.sighup, on_reload, SIGHUP);
	log_info("event=start version=%s config=%s accounts=%zu", MF_VERSION, path,
		 (*cfg)->n_accounts);
	start_accounts(&d);
	uv_run(loop, UV_RUN_DEFAULT);
	config_free(&d.retired);
	config_free(&d.pending);
	log_info("event=exit");
	return d.status;
}
