/* SPDX-License-Identifier: MIT */
/* The throttler's aggregation and checks: starting probes, turning each
 * cluster's host results into its aggregate (which expires when not
 * recomputed for 5 s), the self checks that record when a cluster was last
 * healthy, and the check records HTTP threads send through the event rings.
 * Loop thread. */
#include "throttler/throttler_impl.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/xalloc.h"
#include "log/log.h"
#include "metrics/check_counters.h"
#include "metrics/metrics.h"
#include "probe/probe.h"
#include "snapshot/check.h"
#include "snapshot/events.h"
#include "throttler/aggregate.h"

/* ---- check records ---- */

/* Logs once when a cap first makes room by forgetting an entry. */
static void log_evicting(bool *logged, uint64_t evicted, const char *what, const char *key,
                         int64_t cap)
{
    if (*logged || evicted == 0)
        return;
    log_warn("throttler: %" PRId64 " %s reached (%s), the least recently seen are forgotten", cap,
             what, key);
    *logged = true;
}

static void record_check(struct throttler *t, const char *app, const char *store,
                         const char *client, int status, uint64_t at_ms)
{
    /* Only stores that exist get counters: a client can name any store, and
     * the original's per-store names would grow with each one. */
    if (config_find_cluster(t->cfg, store) != NULL) {
        check_counters_add(t->checks, app, store, status);
        struct check_counters_stats cs;
        check_counters_get_stats(t->checks, &cs);
        log_evicting(&t->apps_evicting_logged, cs.apps_evicted, "counted apps", "MaxCountedApps",
                     t->cfg->max_counted_apps);
        log_evicting(&t->app_stores_evicting_logged, cs.app_stores_evicted,
                     "counted app/store pairs", "MaxCountedAppStores",
                     t->cfg->max_counted_app_stores);
    }
    recent_apps_record(&t->recent, app, client, at_ms);
    log_evicting(&t->recent_evicting_logged, recent_apps_evicted(&t->recent),
                 "recent app/client pairs", "MaxRecentApps", t->cfg->max_recent_apps);
    t->dirty_recent = true;
}

static void on_event(const struct check_event *e, void *arg)
{
    record_check(arg, e->app, e->store, e->client, e->status, e->at_ms);
}

void throttler_take_check_records(struct throttler *t)
{
    events_drain(on_event, t);
}

/* ---- aggregation ---- */

/* Fills @hs with @c's last host results, counting each failed one once.
 * Returns false while a host has no result yet. */
static bool gather_results(struct cluster *c, struct agg_host *hs)
{
    bool collected = true;
    for (size_t i = 0; i < c->nhosts; i++) {
        struct host_probe *h = c->hosts[i];
        const struct probe_result *r = probe_last(h->probe);
        /* Probes start every 50 ms and this runs every 25 ms on the same
         * loop, so each completed result is seen here once. */
        if (r->at_ms != h->seen_at_ms) {
            h->seen_at_ms = r->at_ms;
            if (r->status == PROBE_ERR || r->status == PROBE_ERR_DIAL)
                h->probe_errors++;
        }
        hs[i] = (struct agg_host){
                .status = r->status, .value = r->value, .msg = r->msg, .http_404 = h->http_404};
        if (r->status == PROBE_NONE_YET)
            collected = false;
    }
    return collected;
}

static void set_aggregate(struct cluster *c, const struct agg_host *hs, uint64_t now_ms)
{
    struct agg_params ap = {
            .ignore_hosts_count = c->cfg->ignore_hosts_count,
            .ignore_hosts_threshold = c->cfg->ignore_hosts_threshold,
            .ignore_dial_tcp_errors = c->cfg->ignore_dial_tcp_errors,
    };
    struct agg_result res;
    aggregate_hosts(hs, c->nhosts, &ap, &res);
    c->has_value = true;
    c->ok = res.ok;
    c->value = res.ok ? res.value : 0;
    snprintf(c->err, sizeof(c->err), "%s", res.ok ? "" : res.msg);
    c->aggregated_at_ms = now_ms;
}

/* Aggregates @c at @now_ms; returns whether what the snapshot shows of it
 * changed. */
static bool aggregate_cluster(struct cluster *c, uint64_t now_ms)
{
    bool had = c->has_value, was_ok = c->ok;
    double old_value = c->value;
    char old_err[sizeof(c->err)];
    memcpy(old_err, c->err, sizeof(old_err));

    struct agg_host stack_hosts[16];
    struct agg_host *hs = c->nhosts <= 16 ? stack_hosts : xcalloc(c->nhosts, sizeof(*hs));
    if (gather_results(c, hs))
        set_aggregate(c, hs, now_ms);
    else if (c->has_value && now_ms - c->aggregated_at_ms > THROTTLER_AGGREGATE_EXPIRY_MS)
        c->has_value = false;
    if (hs != stack_hosts)
        free(hs);
    if (c->has_value && !c->ok && (!had || was_ok || strcmp(old_err, c->err) != 0))
        log_warn("throttler: %s: %s", c->metric_name, c->err);
    else if (c->has_value && c->ok && had && !was_ok)
        log_info("throttler: %s: healthy again, value %f", c->metric_name, c->value);
    return had != c->has_value || was_ok != c->ok || old_value != c->value ||
           strcmp(old_err, c->err) != 0;
}

void throttler_start_probes(struct throttler *t, uint64_t now_ms)
{
    for (size_t i = 0; i < t->nclusters; i++)
        for (size_t j = 0; j < t->clusters[i].nhosts; j++)
            probe_start(t->clusters[i].hosts[j]->probe, now_ms);
}

void throttler_tick_collect(struct throttler *t)
{
    if (t->is_leader)
        throttler_start_probes(t, throttler_now_ms(t));
}

void throttler_tick_aggregate(struct throttler *t)
{
    uint64_t now_ms = throttler_now_ms(t);
    throttler_take_check_records(t);
    for (size_t i = 0; i < t->nclusters; i++) {
        struct cluster *c = &t->clusters[i];
        if (t->is_leader && aggregate_cluster(c, now_ms))
            t->dirty_metrics = true;
        if (t->is_leader && t->on_aggregated != NULL)
            t->on_aggregated(c->metric_name, c->has_value, c->ok, c->value, now_ms,
                             t->on_aggregated_arg);
        if (c->share_known && now_ms >= c->share_until_ms) {
            c->share_known = false;
            t->dirty_metrics = true;
        }
    }
    if (t->dirty_metrics)
        throttler_rebuild_metrics(t);
    if (t->publish_pending)
        throttler_publish_at(t, now_ms);
}

void throttler_set_aggregate_hook(struct throttler *t, throttler_aggregate_fn *fn, void *arg)
{
    t->on_aggregated = fn;
    t->on_aggregated_arg = arg;
}

void throttler_set_share_health(struct throttler *t, const char *metric, int64_t seconds,
                                uint64_t now_ms)
{
    for (size_t i = 0; i < t->nclusters; i++) {
        struct cluster *c = &t->clusters[i];
        if (strcmp(c->metric_name, metric) != 0)
            continue;
        if (!c->share_known || c->share_seconds != seconds)
            t->dirty_metrics = true;
        c->share_known = true;
        c->share_seconds = seconds;
        c->share_until_ms = now_ms + THROTTLER_SHARE_HEALTH_EXPIRY_MS;
    }
}

/* ---- self checks ---- */

static void self_check(struct throttler *t, const struct snapshot *s, struct cluster *c,
                       const char *app, uint64_t now_ms)
{
    struct check_request r = {.app = app, .store_type = "mysql", .store_name = c->cfg->name};
    struct check_result res;
    check_decide(s, &r, now_ms, 0.999999, &res);
    if (res.known_store) {
        metrics_count_check(res.status);
        record_check(t, app, c->cfg->name, "local", res.status, now_ms);
    }
    if (strcmp(app, CHECK_APP_FRENO) == 0 && res.status == 200) {
        c->last_healthy_at_ms = now_ms;
        t->dirty_metrics = true;
    }
}

void throttler_tick_self_check(struct throttler *t)
{
    if (!t->is_leader)
        return;
    uint64_t now_ms = throttler_now_ms(t);
    const struct snapshot *s = snapshot_acquire();
    for (size_t i = 0; i < t->nclusters; i++) {
        struct cluster *c = &t->clusters[i];
        if (!c->has_value)
            continue;
        self_check(t, s, c, CHECK_APP_FRENO, now_ms);
        self_check(t, s, c, CHECK_APP_SHARE_DOMAIN, now_ms);
    }
    snapshot_release(s);
}
