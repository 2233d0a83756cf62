/*
 * The process's own resources and identity: the fd limit that bounds
 * max_connections, the switch to the configured user, core dumps, and
 * how many workers the CPUs we may run on call for.
 */
#ifndef NT_PROC_H
#define NT_PROC_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* the max_connections the fd limit allows (raised as far as it can be) */
unsigned nt_proc_fd_budget(const struct nt_config *cfg, size_t n_workers);
/* become user (when root and user is set); 0 or -1, logged */
int nt_proc_drop_privileges(const char *user);
void nt_proc_core_dumps(bool on);
unsigned nt_proc_workers(const struct nt_config *cfg);

#endif
