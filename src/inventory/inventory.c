/* SPDX-License-Identifier: MIT */
/* Inventory refresh driver: a 1 s tick decides, per dynamic cluster, whether
 * a refresh is due (10 s after the previous start, or leadership was just
 * gained) and starts it unless one is still running. Results go to
 * throttler_set_cluster_hosts(), which filters IgnoreHosts and skipped hosts
 * and keeps the probes of hosts that stay. Loop thread. */
#include "inventory/inventory.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "config/config.h"
#include "core/err.h"
#include "core/redact.h"
#include "core/xalloc.h"
#include "httpc/httpc.h"
#include "inventory/httpcheck.h"
#include "inventory/inv_haproxy.h"
#include "inventory/inv_proxysql.h"
#include "inventory/inv_vitess.h"
#include "log/log.h"
#include "loop/loop.h"
#include "loop/loop_timer.h"
#include "throttler/throttler.h"

#define TICK_MS          1000
#define REFRESH_EVERY_MS 10000

struct inv_cluster {
    struct inventory *inv;
    size_t idx;
    const struct config_cluster *cc;
    struct inv_proxysql *proxysql;
    bool busy;
    uint64_t next_at_ms;
    bool ever_ok;
    bool failing;
    char last_err[256];
    size_t nhosts; /* from the last good refresh */
};

struct inventory {
    struct loop *loop;
    const struct config *cfg;
    struct throttler *t;
    struct httpc *http;
    struct inv_haproxy *haproxy;
    struct inv_vitess *vitess;
    struct httpcheck *httpcheck;
    struct inv_cluster *clusters;
    size_t nclusters;
    uv_timer_t *timer;
    bool was_leader;
};

/* The names are config's table, the one list of host sources. */
static const char *source_name(enum config_host_source s)
{
    return config_source_name(s);
}

/* True if @a and @b differ other than in their digits: curl's messages carry
 * elapsed times, and a changed count is not a new kind of failure. */
static bool reason_changed(const char *a, const char *b)
{
    for (;;) {
        while (*a >= '0' && *a <= '9')
            a++;
        while (*b >= '0' && *b <= '9')
            b++;
        if (*a != *b)
            return true;
        if (*a == '\0')
            return false;
        a++;
        b++;
    }
}

static void on_source_done(void *arg, const struct inv_hosts *hosts, const struct err *err)
{
    struct inv_cluster *ic = arg;
    ic->busy = false;
    if (hosts == NULL) {
        /* The sources format their messages with masked URLs; masking again
         * here keeps a source that forgot from leaking into the log. */
        char why[sizeof(err->msg) + 64];
        redact_text(err != NULL ? err->msg : "unknown error", why, sizeof(why));
        if (!ic->failing || reason_changed(ic->last_err, why))
            log_warn("inventory: %s: %s; keeping the previous %zu host(s)", ic->cc->name, why,
                     ic->nhosts);
        ic->failing = true;
        snprintf(ic->last_err, sizeof(ic->last_err), "%s", why);
        return;
    }
    if (ic->failing)
        log_info("inventory: %s: %s source answers again, %zu host(s)", ic->cc->name,
                 source_name(ic->cc->source), hosts->len);
    else if (!ic->ever_ok || hosts->len != ic->nhosts)
        log_info("inventory: %s: %zu host(s) from %s", ic->cc->name, hosts->len,
                 source_name(ic->cc->source));
    ic->failing = false;
    ic->last_err[0] = '\0';
    ic->ever_ok = true;
    ic->nhosts = hosts->len;
    throttler_set_cluster_hosts(ic->inv->t, ic->idx, hosts->v, hosts->len);
}

static void refresh(struct inv_cluster *ic, uint64_t now_ms)
{
    struct inventory *inv = ic->inv;
    ic->busy = true;
    ic->next_at_ms = now_ms + REFRESH_EVERY_MS;
    switch (ic->cc->source) {
    case CONFIG_SOURCE_HAPROXY:
        inv_haproxy_refresh(inv->haproxy, ic->cc, now_ms, on_source_done, ic);
        break;
    case CONFIG_SOURCE_PROXYSQL:
        inv_proxysql_refresh(ic->proxysql, now_ms, on_source_done, ic);
        break;
    case CONFIG_SOURCE_VITESS:
        inv_vitess_refresh(inv->vitess, ic->cc, on_source_done, ic);
        break;
    default:
        ic->busy = false;
        break;
    }
}

static void on_tick(uv_timer_t *h)
{
    struct inventory *inv = h->data;
    bool leader = throttler_is_leader(inv->t);
    bool gained = leader && !inv->was_leader;
    inv->was_leader = leader;
    if (!leader)
        return;
    uint64_t now_ms = loop_now_ms(inv->loop);
    for (size_t i = 0; i < inv->nclusters; i++) {
        struct inv_cluster *ic = &inv->clusters[i];
        if (ic->cc->source == CONFIG_SOURCE_STATIC || ic->cc->source == CONFIG_SOURCE_NONE)
            continue;
        if (!ic->busy && (gained || now_ms >= ic->next_at_ms))
            refresh(ic, now_ms);
    }
}

/* The first cluster of @cfg that needs HTTP (an HAProxy or Vitess
 * inventory, or HTTP checks) and what for, or NULL when none does. */
static const struct config_cluster *http_user(const struct config *cfg, const char **what)
{
    for (size_t i = 0; i < cfg->clusters_len; i++) {
        const struct config_cluster *cc = &cfg->clusters[i];
        if (cc->source == CONFIG_SOURCE_HAPROXY || cc->source == CONFIG_SOURCE_VITESS) {
            *what = cc->source == CONFIG_SOURCE_HAPROXY ? "HAProxy inventory" : "Vitess inventory";
            return cc;
        }
        if (cc->http_check_port > 0) {
            *what = "HTTP checks";
            return cc;
        }
    }
    return NULL;
}

struct inventory *inventory_new(struct loop *loop, const struct config *cfg, struct throttler *t,
                                struct err *err)
{
    /* libcurl is loaded only for a config that fetches over HTTP. */
    struct httpc *http = NULL;
    const char *what = NULL;
    const struct config_cluster *user = http_user(cfg, &what);
    if (user != NULL) {
        http = httpc_new(loop, err);
        if (http == NULL) {
            err_prefix(err, "inventory: cluster %s (%s)", user->name, what);
            return NULL;
        }
    }
    struct inventory *inv = xcalloc(1, sizeof(*inv));
    inv->loop = loop;
    inv->cfg = cfg;
    inv->t = t;
    inv->http = http;
    inv->haproxy = inv_haproxy_new(loop, http);
    inv->vitess = inv_vitess_new(http);
    inv->nclusters = cfg->clusters_len;
    inv->clusters = xcalloc(inv->nclusters ? inv->nclusters : 1, sizeof(*inv->clusters));
    for (size_t i = 0; i < inv->nclusters; i++) {
        struct inv_cluster *ic = &inv->clusters[i];
        ic->inv = inv;
        ic->idx = i;
        ic->cc = &cfg->clusters[i];
        if (ic->cc->source == CONFIG_SOURCE_PROXYSQL)
            ic->proxysql = inv_proxysql_new(loop, ic->cc);
    }
    inv->httpcheck = httpcheck_new(loop, cfg, t, http);
    inv->timer = loop_timer_start(loop, on_tick, inv, 0, TICK_MS);
    return inv;
}

void inventory_free(struct inventory *inv)
{
    if (inv == NULL)
        return;
    loop_timer_close(&inv->timer);
    httpcheck_free(inv->httpcheck);
    for (size_t i = 0; i < inv->nclusters; i++)
        inv_proxysql_free(inv->clusters[i].proxysql);
    inv_haproxy_free(inv->haproxy);
    inv_vitess_free(inv->vitess);
    httpc_free(inv->http);
    free(inv->clusters);
    free(inv);
}
