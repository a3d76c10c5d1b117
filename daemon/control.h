/* mailferryctl's commands, carried out on the daemon's accounts: status
 * (a table, or JSON with --json), sync [--wait], pause, resume, reload,
 * log-level, stop, and outbox (control_outbox.h). The socket itself is
 * ctl/server.h. */
#ifndef MF_CONTROL_H
#define MF_CONTROL_H

#include "account.h"
#include "core/err.h"

#include <uv.h>

/* What the control needs of the daemon. */
struct control_ops {
	/* The running accounts (borrowed). */
	struct account *const *(*accounts)(void *ctx, size_t *n);
	/* Re-reads the config: 0, or the error (and the running one is kept). */
	int (*reload)(void *ctx, struct err *err);
	void (*stop)(void *ctx);
};

struct control;

struct control *control_start(uv_loop_t *loop, const char *socket, const struct control_ops *ops,
			      void *ctx, struct err *err);
void control_stop(struct control **cp);

#endif
