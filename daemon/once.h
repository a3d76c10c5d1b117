/* mailferryd --once: one complete pass for every account, a summary line
 * per account, then exit. */
#ifndef MF_ONCE_H
#define MF_ONCE_H

#include "config/config.h"

#include <stdbool.h>
#include <uv.h>

/* Returns the exit status: 0 when every account succeeded, 1 otherwise. */
int once_run(uv_loop_t *loop, const struct config *cfg, bool allow_mass_delete);

#endif
