/* SPDX-License-Identifier: MIT */
/* HTTP checks: one entry per (cluster, host name), at most one GET in flight
 * for it; entries of hosts no longer probed are dropped at the next round.
 * Loop thread. */
#include "inventory/httpcheck.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "config/config.h"
#include "core/err.h"
#include "core/strmap.h"
#include "core/xalloc.h"
#include "httpc/httpc.h"
#include "log/log.h"
#include "loop/loop.h"
#include "loop/loop_timer.h"
#include "metrics/metrics.h"
#include "throttler/throttler.h"

#define CHECK_INTERVAL_MS 5000
#define CHECK_TIMEOUT_MS  1000
#define FIRST_CHECK_MS    1000
#define MAX_BODY          (1u << 20)

struct hc_entry {
    struct httpcheck *hc;
    size_t cluster_idx;
    char *host;
    struct httpc_req *req;
    uint64_t round; /* last round the host was probed in */
};

struct httpcheck {
    struct loop *loop;
    const struct config *cfg;
    struct throttler *t;
    struct httpc *http;
    uv_timer_t *timer;
    struct strmap entries; /* "<cluster idx>/<host>" -> struct hc_entry * */
    uint64_t round;
};

char *httpcheck_url(const char *host, int64_t port, const char *path)
{
    const char *p = path ? path : "";
    if (p[0] == '/')
        p++;
    if (strchr(host, ':') != NULL)
        return xasprintf("http://[%s]:%" PRId64 "/%s", host, port, p);
    return xasprintf("http://%s:%" PRId64 "/%s", host, port, p);
}

static void on_checked(const struct httpc_result *res, void *arg)
{
    struct hc_entry *e = arg;
    e->req = NULL;
    bool is_404 = false;
    if (res->code < 0) {
        metrics_inc(METRICS_HTTPCHECK_ERROR);
        log_debug("inventory: http check %s: %s", e->host, res->msg);
    } else if (res->status == 200) {
        metrics_inc(METRICS_HTTPCHECK_200);
    } else if (res->status == 404) {
        metrics_inc(METRICS_HTTPCHECK_404);
        is_404 = true;
    } else {
        metrics_inc(METRICS_HTTPCHECK_OTHER);
    }
    throttler_set_host_http_404(e->hc->t, e->cluster_idx, e->host, is_404);
}

struct round_ctx {
    struct httpcheck *hc;
    size_t idx;
    const struct config_cluster *cc;
    size_t skipped;
};

static void check_host(const char *host, uint16_t port, void *arg)
{
    (void)port;
    struct round_ctx *rc = arg;
    struct httpcheck *hc = rc->hc;
    if (rc->cc->http_check_port <= 0) {
        rc->skipped++;
        return;
    }
    char *key = xasprintf("%zu/%s", rc->idx, host);
    struct hc_entry *e = strmap_get(&hc->entries, key);
    if (e == NULL) {
        e = xcalloc(1, sizeof(*e));
        e->hc = hc;
        e->cluster_idx = rc->idx;
        e->host = xstrdup(host);
        strmap_put(&hc->entries, key, e);
    }
    free(key);
    /* One check per host name per round, whatever its ports. */
    if (e->round == hc->round)
        return;
    e->round = hc->round;
    if (e->req != NULL)
        return;
    char *url = httpcheck_url(host, rc->cc->http_check_port, rc->cc->http_check_path);
    struct err err = {0};
    e->req = httpc_get(hc->http, url, CHECK_TIMEOUT_MS, MAX_BODY, on_checked, e, &err);
    if (e->req == NULL) {
        metrics_inc(METRICS_HTTPCHECK_ERROR);
        log_warn("inventory: http check: %s", err.msg);
    }
    free(url);
}

static void entry_free(void *value)
{
    struct hc_entry *e = value;
    httpc_cancel(e->req);
    free(e->host);
    free(e);
}

static bool is_stale(const char *key, void *value, void *arg)
{
    (void)key;
    const struct hc_entry *e = value;
    const struct httpcheck *hc = arg;
    return e->round != hc->round && e->req == NULL;
}

/* Drops entries of hosts that were not probed this round and are idle. */
static void prune(struct httpcheck *hc)
{
    strmap_delete_if(&hc->entries, is_stale, hc, entry_free);
}

static void on_round(uv_timer_t *h)
{
    struct httpcheck *hc = h->data;
    if (!throttler_is_leader(hc->t))
        return;
    hc->round++;
    for (size_t i = 0; i < hc->cfg->clusters_len; i++) {
        struct round_ctx rc = {.hc = hc, .idx = i, .cc = &hc->cfg->clusters[i]};
        throttler_each_cluster_host(hc->t, i, check_host, &rc);
        /* As the original: a host of a cluster without checks counts as a skip. */
        if (rc.skipped > 0)
            metrics_add(METRICS_HTTPCHECK_SKIP, rc.skipped);
    }
    prune(hc);
}

struct httpcheck *httpcheck_new(struct loop *loop, const struct config *cfg, struct throttler *t,
                                struct httpc *http)
{
    struct httpcheck *hc = xcalloc(1, sizeof(*hc));
    hc->loop = loop;
    hc->cfg = cfg;
    hc->t = t;
    hc->http = http;
    strmap_init(&hc->entries);
    hc->timer = loop_timer_start(loop, on_round, hc, FIRST_CHECK_MS, CHECK_INTERVAL_MS);
    return hc;
}

void httpcheck_free(struct httpcheck *hc)
{
    if (hc == NULL)
        return;
    loop_timer_close(&hc->timer);
    strmap_deinit_values(&hc->entries, entry_free);
    free(hc);
}
