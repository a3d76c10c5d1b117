/* mailferryd --check: log in to every configured server, list its folders,
 * and print one line per account and server. Nothing is synced. */
#ifndef MF_CHECK_H
#define MF_CHECK_H

#include "config/config.h"

#include <uv.h>

/* Runs the loop until every check is done. Returns the exit status: 0 when
 * every server answered as it should, 1 otherwise (each failure on stderr). */
int check_run(uv_loop_t *loop, const struct config *cfg);

#endif
