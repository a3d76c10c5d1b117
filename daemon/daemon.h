/* The long-running daemon: the loop, signals (SIGTERM and SIGINT stop it
 * cleanly, SIGHUP reloads the config) and the accounts it keeps in step. */
#ifndef MF_DAEMON_H
#define MF_DAEMON_H

#include "config/config.h"

#include <uv.h>

/* Runs until SIGTERM or SIGINT. *cfg may be replaced by a reload (the old one
 * is freed); path is where the config is re-read from. forced_level is the
 * log level -v/-q chose, kept across reloads, or -1 to follow the config's
 * log_level. Returns the exit status. */
int daemon_run(uv_loop_t *loop, struct config **cfg, const char *path, int forced_level);

#endif
