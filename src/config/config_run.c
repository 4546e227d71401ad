/* SPDX-License-Identifier: MIT */
/* The config a running daemon uses: the files --config names (or the
 * default search list) with the command-line flags that override keys
 * applied on top, every diagnostic logged. The same function loads it at
 * start and on SIGHUP, so a reload reads and reports exactly what a start
 * would. Main thread. */
#include "config/config.h"

#include <errno.h>
#include <stdlib.h>

#include "core/xalloc.h"
#include "log/log.h"

int config_load_origin(const struct config_origin *o, struct config **out)
{
    static const char *const defaults[] = {"/etc/freno.conf.json", "conf/freno.conf.json"};
    const char *explicit_path[1] = {o->path};
    struct config *cfg = NULL;
    struct config_diag diag = {0};
    int rc = o->path ? config_load_files(explicit_path, 1, false, &cfg, &diag)
                     : config_load_files(defaults, 2, true, &cfg, &diag);
    for (size_t i = 0; i < diag.warnings_len; i++)
        log_warn("%s", diag.warnings[i]);
    for (size_t i = 0; i < diag.errors_len; i++)
        log_error("%s", diag.errors[i]);
    config_diag_deinit(&diag);
    *out = NULL;
    if (rc < 0)
        return -EINVAL;
    if (o->http_port)
        cfg->listen_port = (uint16_t)o->http_port;
    if (o->raft_datadir) {
        free(cfg->raft_data_dir);
        cfg->raft_data_dir = xstrdup(o->raft_datadir);
    }
    if (o->raft_bind) {
        free(cfg->raft_bind);
        cfg->raft_bind = xstrdup(o->raft_bind);
    }
    if (o->raft_nodes)
        config_strv_set_csv(&cfg->raft_nodes, o->raft_nodes);
    if (o->enable_profiling)
        cfg->enable_profiling = true;
    *out = cfg;
    return 0;
}
