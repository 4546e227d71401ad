/* SPDX-License-Identifier: MIT */
/* The throttler's aggregation and checks: starting probes, turning each
 * metric's host results into its aggregate (which expires when not
 * recomputed for 5 s), the self checks that record when a metric was last
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
#include "snapshot/history.h"
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

/* Fills @hs with @c's last host results of metric @mi, counting each failed
 * one once. Returns false while a host has no result yet. */
static bool gather_results(struct cluster *c, size_t mi, struct agg_host *hs)
{
    bool collected = true;
    for (size_t i = 0; i < c->nhosts; i++) {
        struct host_probe *h = c->hosts[i];
        struct host_metric *hm = &h->m[mi];
        const struct probe_result *r = probe_last(hm->probe);
        /* Probes start every 50 ms and this runs every 25 ms on the same
         * loop, so each completed result is seen here once. */
        if (r->at_ms != hm->seen_at_ms) {
            hm->seen_at_ms = r->at_ms;
            if (r->status == PROBE_ERR || r->status == PROBE_ERR_DIAL)
                hm->probe_errors++;
        }
        hs[i] = (struct agg_host){
                .status = r->status, .value = r->value, .msg = r->msg, .http_404 = h->http_404};
        if (r->status == PROBE_NONE_YET)
            collected = false;
    }
    return collected;
}

static void set_aggregate(const struct cluster *c, struct cluster_metric *cm,
                          const struct agg_host *hs, uint64_t now_ms)
{
    struct agg_params ap = {
            .ignore_hosts_count = c->cfg->ignore_hosts_count,
            .ignore_hosts_percent = c->cfg->ignore_hosts_percent,
            .ignore_hosts_threshold = cm->ignore_hosts_threshold,
            .ignore_dial_tcp_errors = c->cfg->ignore_dial_tcp_errors,
    };
    struct agg_result res;
    aggregate_hosts(hs, c->nhosts, &ap, &res);
    cm->has_value = true;
    cm->ok = res.ok;
    cm->value = res.ok ? res.value : 0;
    snprintf(cm->err, sizeof(cm->err), "%s", res.ok ? "" : res.msg);
    snprintf(cm->host, sizeof(cm->host), "%s", res.host < c->nhosts ? c->hosts[res.host]->key : "");
    cm->aggregated_at_ms = now_ms;
}

/* Aggregates metric @mi of @c at @now_ms, with @hs room for every host;
 * returns whether what the snapshot shows of it changed. */
static bool aggregate_metric(struct cluster *c, size_t mi, struct agg_host *hs, uint64_t now_ms)
{
    struct cluster_metric *cm = &c->metrics[mi];
    bool had = cm->has_value, was_ok = cm->ok;
    double old_value = cm->value;
    char old_err[sizeof(cm->err)], old_host[sizeof(cm->host)];
    memcpy(old_err, cm->err, sizeof(old_err));
    memcpy(old_host, cm->host, sizeof(old_host));

    if (gather_results(c, mi, hs))
        set_aggregate(c, cm, hs, now_ms);
    else if (cm->has_value && now_ms - cm->aggregated_at_ms > THROTTLER_AGGREGATE_EXPIRY_MS)
        cm->has_value = false;
    if (cm->has_value && !cm->ok && (!had || was_ok || strcmp(old_err, cm->err) != 0))
        log_warn("throttler: %s: %s", cm->name, cm->err);
    else if (cm->has_value && cm->ok && had && !was_ok)
        log_info("throttler: %s: healthy again, value %f", cm->name, cm->value);
    return had != cm->has_value || was_ok != cm->ok || old_value != cm->value ||
           strcmp(old_err, cm->err) != 0 || strcmp(old_host, cm->host) != 0;
}

/* Aggregates every metric of @c; returns whether the snapshot must show a
 * change. */
static bool aggregate_cluster(struct cluster *c, uint64_t now_ms)
{
    struct agg_host stack_hosts[16];
    struct agg_host *hs = c->nhosts <= 16 ? stack_hosts : xcalloc(c->nhosts, sizeof(*hs));
    bool changed = false;
    for (size_t i = 0; i < c->nmetrics; i++)
        changed |= aggregate_metric(c, i, hs, now_ms);
    if (hs != stack_hosts)
        free(hs);
    return changed;
}

void throttler_start_probes(struct throttler *t, uint64_t now_ms)
{
    for (size_t i = 0; i < t->nclusters; i++) {
        const struct cluster *c = &t->clusters[i];
        for (size_t j = 0; j < c->nhosts; j++)
            for (size_t k = 0; k < c->nmetrics; k++)
                probe_start(c->hosts[j]->m[k].probe, now_ms);
    }
}

void throttler_tick_collect(struct throttler *t)
{
    if (t->is_leader)
        throttler_start_probes(t, throttler_now_ms(t));
}

/* Records every metric's aggregate for the second of @now_ms (the first
 * aggregation of each second does), and forgets clusters no longer here. */
static void record_history(struct throttler *t, uint64_t now_ms)
{
    uint64_t s = now_ms / 1000;
    if (t->history == NULL || s == t->history_s)
        return;
    t->history_s = s;
    for (size_t i = 0; i < t->nclusters; i++) {
        const struct cluster *c = &t->clusters[i];
        struct history_sample v[FRENO_METRICS_MAX];
        for (size_t j = 0; j < c->nmetrics; j++) {
            const struct cluster_metric *cm = &c->metrics[j];
            v[j] = (struct history_sample){.metric = cm->metric,
                                           .name = cm->name,
                                           .threshold = cm->threshold,
                                           .has_value = cm->has_value && cm->ok,
                                           .value = cm->value};
        }
        history_record(t->history, c->cfg->name, v, c->nmetrics, s);
    }
    history_sweep(t->history);
}

void throttler_tick_aggregate(struct throttler *t)
{
    uint64_t now_ms = throttler_now_ms(t);
    throttler_take_check_records(t);
    for (size_t i = 0; i < t->nclusters; i++) {
        struct cluster *c = &t->clusters[i];
        if (t->is_leader && aggregate_cluster(c, now_ms))
            t->dirty_metrics = true;
        for (size_t j = 0; j < c->nmetrics; j++) {
            struct cluster_metric *cm = &c->metrics[j];
            if (t->is_leader && t->on_aggregated != NULL)
                t->on_aggregated(cm->name, cm->has_value, cm->ok, cm->value, now_ms,
                                 t->on_aggregated_arg);
            if (cm->share_known && now_ms >= cm->share_until_ms) {
                cm->share_known = false;
                t->dirty_metrics = true;
            }
        }
    }
    record_history(t, now_ms);
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
        for (size_t j = 0; j < c->nmetrics; j++) {
            struct cluster_metric *cm = &c->metrics[j];
            if (strcmp(cm->name, metric) != 0)
                continue;
            if (!cm->share_known || cm->share_seconds != seconds)
                t->dirty_metrics = true;
            cm->share_known = true;
            cm->share_seconds = seconds;
            cm->share_until_ms = now_ms + THROTTLER_SHARE_HEALTH_EXPIRY_MS;
        }
    }
}

/* ---- self checks ---- */

/* One self check of @c as @app. As app freno it also records, per metric,
 * when the metric was last within its threshold: each metric's health is
 * its own, whatever the others say. */
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
    /* Only an answer the metrics decided says something about them (not an
     * operator throttle on freno, nor a snapshot older than this cluster). */
    if (strcmp(app, CHECK_APP_FRENO) != 0 ||
        (res.reason != CHECK_REASON_NONE && res.reason != CHECK_REASON_METRIC))
        return;
    for (size_t i = 0; i < res.nmetrics; i++) {
        if (res.metrics[i].status != 200)
            continue;
        for (size_t j = 0; j < c->nmetrics; j++) {
            if (strcmp(c->metrics[j].name, res.metrics[i].m->name) == 0) {
                c->metrics[j].last_healthy_at_ms = now_ms;
                t->dirty_metrics = true;
            }
        }
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
        bool any = false;
        for (size_t j = 0; j < c->nmetrics; j++)
            any |= c->metrics[j].has_value;
        if (!any)
            continue;
        self_check(t, s, c, CHECK_APP_FRENO, now_ms);
        self_check(t, s, c, CHECK_APP_SHARE_DOMAIN, now_ms);
    }
    snapshot_release(s);
}
