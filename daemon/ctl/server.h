/* The daemon's control socket: a unix stream socket (mode 0600, in a
 * directory of mode 0700) that mailferryctl talks to. Only the daemon's own
 * user gets in (SO_PEERCRED). A request must arrive whole within a few
 * seconds and within CTL_MAX_BYTES; a slow or hostile client costs a buffer
 * and a timer, never the loop. The answer may come later (sync --wait). */
#ifndef MF_CTL_SERVER_H
#define MF_CTL_SERVER_H

#include "core/err.h"

#include <stddef.h>
#include <uv.h>

struct ctl_server;
struct ctl_conn;

/* A complete request: words[0..n) (NULL-terminated, valid until the reply).
 * The handler answers with ctl_conn_reply, now or later. */
typedef void (*ctl_handler)(void *ctx, struct ctl_conn *conn, char **words, size_t n);

/* Listens on path. A socket left by a daemon that died is replaced; one a
 * live daemon answers on is not: -EADDRINUSE with a clear message. */
struct ctl_server *ctl_server_start(uv_loop_t *loop, const char *path, ctl_handler handler,
				    void *ctx, struct err *err);
/* Stops listening, removes the socket file, drops the connections (pending
 * answers are not sent). NULL-safe, clears *sp. */
void ctl_server_stop(struct ctl_server **sp);

/* Sends the exit status and text, then closes the connection and frees conn.
 * Safe when the client went away meanwhile. */
void ctl_conn_reply(struct ctl_conn *conn, int status, const char *text);

#endif
