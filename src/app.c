/* SPDX-License-Identifier: MIT */
/* Start and stop order: loop, throttler, leader, HTTP; on SIGTERM the leader
 * gives up leadership first (so a peer takes over at once), then the loop
 * stops and everything is torn down in reverse. Main thread. */
#include "app.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "config/config.h"
#include "core/err.h"
#include "core/xalloc.h"
#include "http/http_server.h"
#include "inventory/inventory.h"
#include "leader/leader.h"
#include "log/log.h"
#include "loop/loop.h"
#include "publish/memcache_pub.h"
#include "snapshot/events.h"
#include "snapshot/snapshot.h"
#include "throttler/throttler.h"

struct app {
    struct config *cfg;
    struct loop *loop;
    struct throttler *throttler;
    struct inventory *inventory;
    struct memcache_pub *memcache;
    struct leader *leader;
    uv_signal_t sigterm;
    uv_signal_t sigint;
    bool stopping;
};

static void on_cmd(struct loop_cmd *cmd, void *arg)
{
    struct app *a = arg;
    if (a->stopping) {
        loop_cmd_finish(a->loop, cmd, 503, "shutting down");
        return;
    }
    leader_submit(a->leader, cmd);
}

static void on_aggregated(const char *metric, bool has_value, bool ok, double value,
                          uint64_t now_ms, void *arg)
{
    memcache_pub_put(arg, metric, has_value, ok, value, now_ms);
}

static void on_leader_released(void *arg)
{
    struct app *a = arg;
    loop_stop(a->loop);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct app *a = h->data;
    if (a->stopping) {
        log_warn("app: second signal %d, stopping now", signum);
        loop_stop(a->loop);
        return;
    }
    a->stopping = true;
    log_info("app: signal %d, shutting down", signum);
    leader_shutdown(a->leader, on_leader_released, a);
}

int app_run(const struct app_params *p)
{
    struct app a = {.cfg = p->cfg};
    int code = 1;
    struct err err = {0};
    struct http_server *http = NULL;
    char hostname[256] = "";
    if (gethostname(hostname, sizeof(hostname) - 1) == -1)
        snprintf(hostname, sizeof(hostname), "localhost");
    char *service_id = xasprintf("%s:%u", hostname, (unsigned)a.cfg->listen_port);

    snapshot_init();
    a.loop = loop_new();
    if (a.loop == NULL) {
        log_error("app: cannot create the event loop");
        goto out;
    }
    a.throttler = throttler_new(a.loop, a.cfg, hostname, service_id);
    a.inventory = inventory_new(a.loop, a.cfg, a.throttler, &err);
    if (a.inventory == NULL) {
        log_error("%s", err.msg);
        goto out;
    }
    a.memcache = memcache_pub_new(a.loop, a.cfg);
    if (a.memcache != NULL)
        throttler_set_aggregate_hook(a.throttler, on_aggregated, a.memcache);
    struct leader_params lp = {
            .loop = a.loop,
            .cfg = a.cfg,
            .throttler = a.throttler,
            .service_id = service_id,
            .force_leadership = p->force_leadership,
    };
    a.leader = leader_new(&lp, &err);
    if (a.leader == NULL) {
        log_error("%s", err.msg);
        goto out;
    }
    loop_set_cmd_handler(a.loop, on_cmd, &a);
    struct http_server_params hp = {.port = a.cfg->listen_port, .loop = a.loop};
    http = http_server_start(&hp, &err);
    if (http == NULL) {
        log_error("%s", err.msg);
        goto out;
    }
    uv_signal_init(loop_uv(a.loop), &a.sigterm);
    uv_signal_init(loop_uv(a.loop), &a.sigint);
    a.sigterm.data = a.sigint.data = &a;
    uv_signal_start(&a.sigterm, on_signal, SIGTERM);
    uv_signal_start(&a.sigint, on_signal, SIGINT);
    log_info("app: listening on port %u, %zu cluster(s), service id %s",
             (unsigned)a.cfg->listen_port, a.cfg->clusters_len, service_id);
    loop_run(a.loop);
    code = 0;
out:
    a.stopping = true;
    http_server_stop(http);
    leader_free(a.leader);
    inventory_free(a.inventory);
    if (a.throttler != NULL)
        throttler_set_aggregate_hook(a.throttler, NULL, NULL);
    memcache_pub_free(a.memcache);
    throttler_free(a.throttler);
    loop_free(a.loop);
    snapshot_shutdown();
    events_shutdown();
    config_free(a.cfg);
    free(service_id);
    log_info("app: stopped");
    return code;
}
