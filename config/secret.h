/* Fetching a server password: the configured password, or the first line of
 * password_command's stdout, run asynchronously on the loop with a timeout.
 * The secret is wiped by the caller with secret_free once it has been used. */
#ifndef MF_CONFIG_SECRET_H
#define MF_CONFIG_SECRET_H

#include "config/config.h"

#include <uv.h>

struct secret_req;

/* secret: NUL-terminated, owned by the request, valid only during the call
 * (copy it if needed); NULL on failure with err filled in (class ERR_CONFIG
 * for a command that fails or prints nothing, ERR_TEMP for a timeout). */
typedef void (*secret_cb)(void *ctx, const char *secret, const struct err *err);

/* Starts fetching the secret of sc. The callback runs exactly once, from the
 * loop (also when the password is in the config), unless secret_cancel is
 * called first. Returns the request handle (owned by the loop; it frees
 * itself after the callback or cancel). timeout_ms bounds the command (0: no
 * limit); at the limit its whole process group is killed and the callback
 * gets ERR_TEMP. A command that cannot be started is reported through the
 * callback too. */
struct secret_req *secret_fetch(uv_loop_t *loop, const struct server_conf *sc, unsigned timeout_ms,
				secret_cb cb, void *ctx);
/* The callback will not run; a running command is killed. A no-op from
 * inside the callback; req must not be used once the callback has returned. */
void secret_cancel(struct secret_req *req);

#endif
