/* SPDX-License-Identifier: MIT */
/* The throttler owns every cluster's probes and aggregate, the operator
 * state and the check bookkeeping, and publishes the snapshot HTTP threads
 * read. Everything here runs on the loop thread and takes no lock; check
 * records from HTTP threads arrive through the event rings. */
#include "throttler/throttler.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <jansson.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/jsonfmt.h"
#include "core/redact.h"
#include "core/strmap.h"
#include "core/xalloc.h"
#include "log/log.h"
#include "loop/loop.h"
#include "loop/loop_timer.h"
#include "metrics/check_counters.h"
#include "metrics/metrics.h"
#include "metrics/render.h"
#include "probe/probe.h"
#include "snapshot/check.h"
#include "snapshot/events.h"
#include "snapshot/snapshot.h"
#include "throttler/aggregate.h"
#include "throttler/app_throttle.h"
#include "throttler/recent_apps.h"
#include "throttler/skipped_hosts.h"

#define COLLECT_INTERVAL_MS    50
#define AGGREGATE_INTERVAL_MS  25
#define SELF_CHECK_INTERVAL_MS 100
#define SLOW_INTERVAL_MS       1000
#define SWEEP_INTERVAL_MS      5000
#define AGGREGATE_EXPIRY_MS    5000
#define SHARE_HEALTH_EXPIRY_MS 5000
#define PROBE_TIMEOUT_MS       1000
/* A reloaded expiry this close to the stored one is the same expiry: the
 * backend gives whole seconds from its own now(). */
#define RELOAD_EXPIRY_SLACK_MS 1500
/* /debug/vars and /metrics show a ratio for this many app throttles at most
 * (the first in key order): rendering is redone every second, and
 * MaxThrottledApps allows far more. */
#define THROTTLED_STATES_MAX 1000

struct host_probe {
    char *host;
    uint16_t port;
    char *key; /* "host:port" */
    struct probe *probe;
    bool http_404;         /* the last HTTP check answered 404: left out of aggregation */
    uint64_t seen_at_ms;   /* completion time of the last result aggregation looked at */
    uint64_t probe_errors; /* failed results seen by aggregation */
};

struct cluster {
    const struct config_cluster *cfg;
    char *metric_name; /* "mysql/<name>" */
    struct metric_live *live;
    struct host_probe **hosts;
    size_t nhosts;
    struct config_hostport *source; /* last list from the inventory, unfiltered */
    size_t nsource;

    bool has_value;
    bool ok;
    double value;
    char err[256];
    uint64_t aggregated_at_ms;
    uint64_t last_healthy_at_ms;
    bool share_known;
    int64_t share_seconds;
    uint64_t share_until_ms;
};

struct throttler {
    struct loop *loop;
    const struct config *cfg;
    char *hostname;
    char *service_id;
    char *memcache_json;
    struct cluster *clusters;
    size_t nclusters;
    bool is_leader;

    uv_timer_t *collect_timer;
    uv_timer_t *aggregate_timer;
    uv_timer_t *selfcheck_timer;
    uv_timer_t *slow_timer;
    uv_timer_t *sweep_timer;
    throttler_aggregate_fn *on_aggregated;
    void *on_aggregated_arg;

    struct app_throttle apps;
    struct skipped_hosts skipped;
    struct recent_apps recent;
    struct check_counters *checks; /* per app, store, app and store */
    bool apps_evicting_logged;
    bool app_stores_evicting_logged;
    bool recent_evicting_logged;

    struct snap_metrics *p_metrics;
    struct snap_apps *p_apps;
    struct snap_hosts *p_hosts;
    struct snap_recents *p_recents;
    struct snap_text *p_text;
    struct snap_leaders *p_leader;
    bool dirty_apps; /* p_apps / p_hosts are rebuilt at the next publish */
    bool dirty_hosts;
    bool dirty_metrics;
    bool dirty_recent;
    bool publish_pending;
};

/* ---- timers ---- */

static uv_timer_t *timer_start(struct throttler *t, uv_timer_cb cb, uint64_t first_ms,
                               uint64_t every_ms)
{
    return loop_timer_start(t->loop, cb, t, first_ms, every_ms);
}

/* ---- check bookkeeping (loop-owned) ---- */

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

/* ---- snapshot parts ---- */

static int cmp_metric(const void *a, const void *b)
{
    return strcmp(((const struct snap_metric *)a)->cluster,
                  ((const struct snap_metric *)b)->cluster);
}

static void rebuild_metrics(struct throttler *t)
{
    struct snap_metric *v = xcalloc(t->nclusters ? t->nclusters : 1, sizeof(*v));
    for (size_t i = 0; i < t->nclusters; i++) {
        struct cluster *c = &t->clusters[i];
        struct snap_metric *m = &v[i];
        m->name = xstrdup(c->metric_name);
        m->cluster = m->name + strlen("mysql/");
        m->threshold = c->cfg->throttle_threshold;
        if (jsonfmt_number(m->threshold_json, sizeof(m->threshold_json), m->threshold) == 0)
            snprintf(m->threshold_json, sizeof(m->threshold_json), "0");
        m->has_value = c->has_value;
        m->ok = c->ok;
        m->value = c->value;
        if (jsonfmt_number(m->value_json, sizeof(m->value_json), m->value) == 0)
            snprintf(m->value_json, sizeof(m->value_json), "0");
        m->err = c->has_value && !c->ok ? xstrdup(c->err) : NULL;
        m->last_healthy_at_ms = c->last_healthy_at_ms;
        m->share_known = c->share_known;
        m->share_seconds_since_healthy = c->share_seconds;
        m->live = metric_live_ref(c->live);
    }
    qsort(v, t->nclusters, sizeof(*v), cmp_metric);
    snap_metrics_unref(t->p_metrics);
    t->p_metrics = snap_metrics_new(v, t->nclusters);
    t->dirty_metrics = false;
    t->publish_pending = true;
}

/* The operator state changed: what the snapshot shows of it is rebuilt
 * once, when it is next published, however many changes came before (a
 * raft log replay applies hundreds). */
static void rebuild_apps(struct throttler *t)
{
    t->dirty_apps = true;
    t->publish_pending = true;
}

/* Entries come in key order, which the snapshot's binary search needs;
 * the keys are packed into one block, so 100,000 entries cost a few
 * milliseconds to copy rather than 100,000 allocations. */
static void build_apps(struct throttler *t)
{
    size_t n = app_throttle_count(&t->apps), bytes = 0, i = 0, o = 0;
    const char *key;
    const struct app_throttle_entry *e;
    for (size_t it = 0; app_throttle_next(&t->apps, &it, &key, &e);)
        bytes += strlen(key) + 1;
    struct snap_app *v = xcalloc(n ? n : 1, sizeof(*v));
    char *block = xmalloc(bytes ? bytes : 1);
    for (size_t it = 0; app_throttle_next(&t->apps, &it, &key, &e); i++) {
        size_t len = strlen(key) + 1;
        memcpy(block + o, key, len);
        v[i] = (struct snap_app){
                .key = block + o, .expire_at_ms = e->expire_at_ms, .ratio = e->ratio};
        o += len;
    }
    snap_apps_unref(t->p_apps);
    t->p_apps = snap_apps_new_packed(v, n, block);
    t->dirty_apps = false;
}

static void rebuild_hosts(struct throttler *t)
{
    t->dirty_hosts = true;
    t->publish_pending = true;
}

static void build_hosts(struct throttler *t)
{
    size_t n = skipped_hosts_count(&t->skipped), bytes = 0, i = 0, o = 0;
    const char *host;
    uint64_t at;
    for (size_t it = 0; skipped_hosts_next(&t->skipped, &it, &host, &at);)
        bytes += strlen(host) + 1;
    struct snap_host *v = xcalloc(n ? n : 1, sizeof(*v));
    char *block = xmalloc(bytes ? bytes : 1);
    for (size_t it = 0; skipped_hosts_next(&t->skipped, &it, &host, &at); i++) {
        size_t len = strlen(host) + 1;
        memcpy(block + o, host, len);
        v[i] = (struct snap_host){.host = block + o, .expire_at_ms = at};
        o += len;
    }
    snap_hosts_unref(t->p_hosts);
    t->p_hosts = snap_hosts_new_packed(v, n, block);
    t->dirty_hosts = false;
}

struct recent_row {
    const char *key; /* borrowed from the table while rebuilding */
    uint64_t checked_at_ms;
};

struct recent_rows {
    struct recent_row *v; /* sized for every pair */
    size_t len;
};

static void collect_recent(const char *key, uint64_t checked_at_ms, void *arg)
{
    struct recent_rows *c = arg;
    struct recent_row *r = &c->v[c->len++];
    r->key = key;
    r->checked_at_ms = checked_at_ms;
}

static int cmp_recent_row(const void *a, const void *b)
{
    return strcmp(((const struct recent_row *)a)->key, ((const struct recent_row *)b)->key);
}

/* The snapshot keeps each key already JSON-encoded and the list sorted, so
 * /recent-apps is one pass of formatting per request. */
static void rebuild_recents(struct throttler *t)
{
    size_t n = recent_apps_count(&t->recent);
    struct recent_rows c = {.v = xcalloc(n ? n : 1, sizeof(struct recent_row))};
    recent_apps_each(&t->recent, collect_recent, &c);
    struct recent_row *rows = c.v;
    qsort(rows, c.len, sizeof(*rows), cmp_recent_row);
    struct snap_recent *v = xcalloc(c.len ? c.len : 1, sizeof(*v));
    for (size_t i = 0; i < c.len; i++) {
        /* Keys are printable UTF-8, so jansson always encodes them. */
        json_t *j = json_string(rows[i].key);
        char *enc = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
        json_decref(j);
        v[i].key_json = enc ? enc : xstrdup("\"?\"");
        v[i].checked_at_ms = rows[i].checked_at_ms;
    }
    free(rows);
    snap_recents_unref(t->p_recents);
    t->p_recents = snap_recents_new(v, c.len);
    t->dirty_recent = false;
    t->publish_pending = true;
}

static void rebuild_text(struct throttler *t, uint64_t now_ms)
{
    size_t nh = 0;
    for (size_t i = 0; i < t->nclusters; i++)
        nh += t->clusters[i].nhosts;
    struct metrics_store *stores = xcalloc(t->nclusters ? t->nclusters : 1, sizeof(*stores));
    struct metrics_host *hosts = xcalloc(nh ? nh : 1, sizeof(*hosts));
    nh = 0;
    for (size_t i = 0; i < t->nclusters; i++) {
        const struct cluster *c = &t->clusters[i];
        struct metrics_store *m = &stores[i];
        m->name = c->cfg->name;
        m->threshold = c->cfg->throttle_threshold;
        m->has_value = c->has_value;
        m->ok = c->ok;
        m->value = c->value;
        m->ever_healthy = c->last_healthy_at_ms != 0;
        m->seconds_since_healthy = now_ms > c->last_healthy_at_ms
                                           ? (int64_t)((now_ms - c->last_healthy_at_ms) / 1000)
                                           : 0;
        m->hosts = &hosts[nh];
        m->nhosts = c->nhosts;
        for (size_t j = 0; j < c->nhosts; j++, nh++) {
            const struct probe_result *r = probe_last(c->hosts[j]->probe);
            hosts[nh].key = c->hosts[j]->key;
            hosts[nh].ok = r->status == PROBE_OK;
            hosts[nh].value = r->value;
            hosts[nh].probe_errors = c->hosts[j]->probe_errors;
        }
    }
    size_t nthr_max = app_throttle_count(&t->apps);
    if (nthr_max > THROTTLED_STATES_MAX)
        nthr_max = THROTTLED_STATES_MAX;
    struct metrics_throttle *thr = xcalloc(nthr_max ? nthr_max : 1, sizeof(*thr));
    size_t nthr = 0, it = 0;
    const char *key;
    const struct app_throttle_entry *e;
    size_t nactive = 0;
    while (app_throttle_next(&t->apps, &it, &key, &e)) {
        if (e->expire_at_ms != 0 && e->expire_at_ms <= now_ms)
            continue;
        nactive++;
        if (nthr == THROTTLED_STATES_MAX)
            continue;
        thr[nthr].key = key;
        thr[nthr].ratio = e->ratio;
        nthr++;
    }
    size_t nskipped = 0;
    it = 0;
    uint64_t exp;
    while (skipped_hosts_next(&t->skipped, &it, &key, &exp))
        if (exp == 0 || exp > now_ms)
            nskipped++;
    const struct snap_leader *l = t->p_leader ? &t->p_leader->l : NULL;
    struct metrics_state st = {
            .is_leader = l && l->is_leader,
            .is_healthy = l && l->healthy,
            .has_backend = t->cfg->backend_host && t->cfg->backend_host[0],
            .stores = stores,
            .nstores = t->nclusters,
            .throttled = thr,
            .nthrottled = nthr,
            .throttled_apps = nactive,
            .skipped_hosts = nskipped,
            .recent_apps = recent_apps_count(&t->recent),
            .recent_apps_evicted = recent_apps_evicted(&t->recent),
            .checks = t->checks,
    };
    size_t dv_len, prom_len;
    char *dv = metrics_render_debug_vars(&st, &dv_len);
    char *prom = metrics_render_prometheus(&st, &prom_len);
    free(stores);
    free(hosts);
    free(thr);
    snap_text_unref(t->p_text);
    t->p_text = snap_text_new(dv, dv_len, prom, prom_len);
    t->publish_pending = true;
}

static void publish(struct throttler *t, uint64_t now_ms)
{
    if (t->dirty_apps)
        build_apps(t);
    if (t->dirty_hosts)
        build_hosts(t);
    struct snapshot s = {
            .built_at_ms = now_ms,
            .hostname = t->hostname,
            .memcache_json = t->memcache_json,
            .control_token = t->cfg->control_token,
            .stale_after_ms = (uint64_t)t->cfg->check_stale_after_ms,
            .metrics = t->p_metrics,
            .apps = t->p_apps,
            .hosts = t->p_hosts,
            .recents = t->p_recents,
            .text = t->p_text,
            .leader = t->p_leader,
    };
    snapshot_publish(&s);
    t->publish_pending = false;
}

/* ---- host sets ---- */

static void host_probe_free(struct host_probe *h)
{
    if (h == NULL)
        return;
    probe_free(h->probe);
    free(h->host);
    free(h->key);
    free(h);
}

static bool host_is_ignored(const struct config_cluster *cc, const char *key)
{
    for (size_t i = 0; i < cc->ignore_hosts.len; i++) {
        const char *sub = cc->ignore_hosts.v[i];
        if (sub[0] != '\0' && strstr(key, sub) != NULL)
            return true;
    }
    return false;
}

static char *hostport_key(const char *host, uint16_t port)
{
    if (strchr(host, ':') != NULL)
        return xasprintf("[%s]:%u", host, (unsigned)port);
    return xasprintf("%s:%u", host, (unsigned)port);
}

/* Rebuilds cluster @c's probed set from its source list, keeping probes of
 * hosts that remain. */
static void apply_hosts(struct throttler *t, struct cluster *c, uint64_t now_ms)
{
    /* An array of pointers is intended. */
    struct host_probe **next = xcalloc(c->nsource ? c->nsource : 1,
                                       sizeof(*next)); // NOLINT(bugprone-sizeof-expression)
    size_t n = 0;
    for (size_t i = 0; i < c->nsource; i++) {
        const struct config_hostport *hp = &c->source[i];
        char *key = hostport_key(hp->host, hp->port);
        bool dup = false;
        for (size_t j = 0; j < n; j++)
            dup = dup || strcmp(next[j]->key, key) == 0;
        if (dup || host_is_ignored(c->cfg, key) ||
            skipped_hosts_is_skipped(&t->skipped, hp->host, now_ms)) {
            free(key);
            continue;
        }
        struct host_probe *keep = NULL;
        for (size_t j = 0; j < c->nhosts; j++) {
            if (c->hosts[j] != NULL && strcmp(c->hosts[j]->key, key) == 0) {
                keep = c->hosts[j];
                c->hosts[j] = NULL;
                break;
            }
        }
        if (keep == NULL) {
            keep = xcalloc(1, sizeof(*keep));
            keep->host = xstrdup(hp->host);
            keep->port = hp->port;
            keep->key = key;
            key = NULL;
            struct probe_params pp = {
                    .host = hp->host,
                    .port = hp->port,
                    .user = c->cfg->user,
                    .password = c->cfg->password,
                    .query = c->cfg->metric_query,
                    .timeout_ms = PROBE_TIMEOUT_MS,
                    .cache_ms = c->cfg->cache_millis > 0 ? (uint32_t)c->cfg->cache_millis : 0,
            };
            keep->probe = probe_new(t->loop, &pp);
            log_info("throttler: %s: probing %s", c->metric_name, keep->key);
        }
        free(key);
        next[n++] = keep;
    }
    for (size_t j = 0; j < c->nhosts; j++) {
        if (c->hosts[j] != NULL)
            log_info("throttler: %s: no longer probing %s", c->metric_name, c->hosts[j]->key);
        host_probe_free(c->hosts[j]);
    }
    free(c->hosts);
    c->hosts = next;
    c->nhosts = n;
    if (t->is_leader)
        for (size_t j = 0; j < n; j++)
            probe_start(next[j]->probe, now_ms);
}

void throttler_set_cluster_hosts(struct throttler *t, size_t cluster_idx,
                                 const struct config_hostport *hosts, size_t n)
{
    struct cluster *c = &t->clusters[cluster_idx];
    for (size_t i = 0; i < c->nsource; i++)
        free(c->source[i].host);
    free(c->source);
    c->source = xcalloc(n ? n : 1, sizeof(*c->source));
    for (size_t i = 0; i < n; i++) {
        c->source[i].host = xstrdup(hosts[i].host);
        c->source[i].port = hosts[i].port;
    }
    c->nsource = n;
    apply_hosts(t, c, clock_wall_ms());
}

void throttler_each_cluster_host(struct throttler *t, size_t cluster_idx,
                                 void (*fn)(const char *host, uint16_t port, void *arg), void *arg)
{
    const struct cluster *c = &t->clusters[cluster_idx];
    for (size_t i = 0; i < c->nhosts; i++)
        fn(c->hosts[i]->host, c->hosts[i]->port, arg);
}

void throttler_set_host_http_404(struct throttler *t, size_t cluster_idx, const char *host,
                                 bool is_404)
{
    const struct cluster *c = &t->clusters[cluster_idx];
    for (size_t i = 0; i < c->nhosts; i++) {
        struct host_probe *h = c->hosts[i];
        if (strcmp(h->host, host) != 0 || h->http_404 == is_404)
            continue;
        h->http_404 = is_404;
        log_info("throttler: %s: %s %s", c->metric_name, h->key,
                 is_404 ? "answers its HTTP check with 404, left out"
                        : "HTTP check no longer 404, counted again");
    }
}

void throttler_set_aggregate_hook(struct throttler *t, throttler_aggregate_fn *fn, void *arg)
{
    t->on_aggregated = fn;
    t->on_aggregated_arg = arg;
}

static void reapply_all_hosts(struct throttler *t, uint64_t now_ms)
{
    for (size_t i = 0; i < t->nclusters; i++)
        apply_hosts(t, &t->clusters[i], now_ms);
}

/* ---- aggregation ---- */

static bool aggregate_cluster(struct cluster *c, uint64_t now_ms)
{
    bool had = c->has_value, was_ok = c->ok;
    double old_value = c->value;
    char old_err[sizeof(c->err)];
    memcpy(old_err, c->err, sizeof(old_err));

    struct agg_host stack_hosts[16];
    struct agg_host *hs = c->nhosts <= 16 ? stack_hosts : xcalloc(c->nhosts, sizeof(*hs));
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
        hs[i] = (struct agg_host){.status = r->status,
                                  .value = r->value,
                                  .msg = r->msg,
                                  .http_404 = c->hosts[i]->http_404};
        if (r->status == PROBE_NONE_YET)
            collected = false;
    }
    if (collected) {
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
    } else if (c->has_value && now_ms - c->aggregated_at_ms > AGGREGATE_EXPIRY_MS) {
        c->has_value = false;
    }
    if (hs != stack_hosts)
        free(hs);
    if (c->has_value && !c->ok && (!had || was_ok || strcmp(old_err, c->err) != 0))
        log_warn("throttler: %s: %s", c->metric_name, c->err);
    else if (c->has_value && c->ok && had && !was_ok)
        log_info("throttler: %s: healthy again, value %f", c->metric_name, c->value);
    return had != c->has_value || was_ok != c->ok || old_value != c->value ||
           strcmp(old_err, c->err) != 0;
}

static void on_collect(uv_timer_t *h)
{
    struct throttler *t = h->data;
    if (!t->is_leader)
        return;
    uint64_t now_ms = clock_wall_ms();
    for (size_t i = 0; i < t->nclusters; i++)
        for (size_t j = 0; j < t->clusters[i].nhosts; j++)
            probe_start(t->clusters[i].hosts[j]->probe, now_ms);
}

static void on_aggregate(uv_timer_t *h)
{
    struct throttler *t = h->data;
    uint64_t now_ms = clock_wall_ms();
    events_drain(on_event, t);
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
        rebuild_metrics(t);
    if (t->publish_pending)
        publish(t, now_ms);
}

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

static void on_self_check(uv_timer_t *h)
{
    struct throttler *t = h->data;
    if (!t->is_leader)
        return;
    uint64_t now_ms = clock_wall_ms();
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

static void on_slow(uv_timer_t *h)
{
    struct throttler *t = h->data;
    uint64_t now_ms = clock_wall_ms();
    events_drain(on_event, t);
    if (t->dirty_recent)
        rebuild_recents(t);
    rebuild_text(t, now_ms);
    publish(t, now_ms);
}

static void on_sweep(uv_timer_t *h)
{
    struct throttler *t = h->data;
    uint64_t now_ms = clock_wall_ms();
    if (app_throttle_sweep(&t->apps, now_ms) > 0)
        rebuild_apps(t);
    if (skipped_hosts_sweep(&t->skipped, now_ms) > 0) {
        rebuild_hosts(t);
        reapply_all_hosts(t, now_ms);
    }
    if (recent_apps_sweep(&t->recent, now_ms) > 0)
        t->dirty_recent = true;
    if (t->publish_pending)
        publish(t, now_ms);
}

/* ---- public ---- */

static char *memcache_json(const struct config *cfg)
{
    json_t *o = json_object();
    json_t *a = json_array();
    for (size_t i = 0; i < cfg->memcache_servers.len; i++) {
        char *shown = redact_address_dup(cfg->memcache_servers.v[i]);
        json_array_append_new(a, json_string(shown));
        free(shown);
    }
    json_object_set_new(o, "MemcacheServers", a);
    json_object_set_new(o, "MemcachePath",
                        json_string(cfg->memcache_path ? cfg->memcache_path : ""));
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    char *r = xasprintf("%s\n", s ? s : "{}");
    free(s);
    return r;
}

struct throttler *throttler_new(struct loop *loop, const struct config *cfg, const char *hostname,
                                const char *service_id)
{
    struct throttler *t = xcalloc(1, sizeof(*t));
    uint64_t now_ms = clock_wall_ms();
    t->loop = loop;
    t->cfg = cfg;
    t->hostname = xstrdup(hostname);
    t->service_id = xstrdup(service_id);
    t->memcache_json = memcache_json(cfg);
    app_throttle_init(&t->apps, now_ms);
    app_throttle_set_max(&t->apps, (size_t)cfg->max_throttled_apps);
    skipped_hosts_init(&t->skipped);
    skipped_hosts_set_max(&t->skipped, (size_t)cfg->max_skipped_hosts);
    recent_apps_init(&t->recent, (size_t)cfg->max_recent_apps);
    t->checks =
            check_counters_new((size_t)cfg->max_counted_apps, (size_t)cfg->max_counted_app_stores);
    t->nclusters = cfg->clusters_len;
    t->clusters = xcalloc(t->nclusters ? t->nclusters : 1, sizeof(*t->clusters));
    for (size_t i = 0; i < t->nclusters; i++) {
        struct cluster *c = &t->clusters[i];
        c->cfg = &cfg->clusters[i];
        c->metric_name = xasprintf("mysql/%s", c->cfg->name);
        c->live = metric_live_new();
        if (c->cfg->source == CONFIG_SOURCE_STATIC)
            throttler_set_cluster_hosts(t, i, c->cfg->static_hosts, c->cfg->static_hosts_len);
    }
    struct snap_leader l = {
            .state = xstrdup("Unhealthy"),
            .leader_id = xstrdup(""),
            .service_id = xstrdup(service_id),
            .domain = xstrdup(cfg->domain ? cfg->domain : ""),
            .share_domain = xstrdup(cfg->share_domain ? cfg->share_domain : ""),
    };
    t->p_leader = snap_leaders_new(&l);
    rebuild_metrics(t);
    rebuild_apps(t);
    rebuild_hosts(t);
    rebuild_recents(t);
    rebuild_text(t, now_ms);
    publish(t, now_ms);

    t->collect_timer = timer_start(t, on_collect, COLLECT_INTERVAL_MS, COLLECT_INTERVAL_MS);
    t->aggregate_timer = timer_start(t, on_aggregate, AGGREGATE_INTERVAL_MS, AGGREGATE_INTERVAL_MS);
    t->selfcheck_timer =
            timer_start(t, on_self_check, SELF_CHECK_INTERVAL_MS, SELF_CHECK_INTERVAL_MS);
    t->slow_timer = timer_start(t, on_slow, SLOW_INTERVAL_MS, SLOW_INTERVAL_MS);
    t->sweep_timer = timer_start(t, on_sweep, SWEEP_INTERVAL_MS, SWEEP_INTERVAL_MS);
    return t;
}

void throttler_free(struct throttler *t)
{
    if (t == NULL)
        return;
    loop_timer_close(&t->collect_timer);
    loop_timer_close(&t->aggregate_timer);
    loop_timer_close(&t->selfcheck_timer);
    loop_timer_close(&t->slow_timer);
    loop_timer_close(&t->sweep_timer);
    for (size_t i = 0; i < t->nclusters; i++) {
        struct cluster *c = &t->clusters[i];
        for (size_t j = 0; j < c->nhosts; j++)
            host_probe_free(c->hosts[j]);
        free(c->hosts);
        for (size_t j = 0; j < c->nsource; j++)
            free(c->source[j].host);
        free(c->source);
        free(c->metric_name);
        metric_live_unref(c->live);
    }
    free(t->clusters);
    check_counters_free(t->checks);
    app_throttle_deinit(&t->apps);
    skipped_hosts_deinit(&t->skipped);
    recent_apps_deinit(&t->recent);
    snap_metrics_unref(t->p_metrics);
    snap_apps_unref(t->p_apps);
    snap_hosts_unref(t->p_hosts);
    snap_recents_unref(t->p_recents);
    snap_text_unref(t->p_text);
    snap_leaders_unref(t->p_leader);
    free(t->hostname);
    free(t->service_id);
    free(t->memcache_json);
    free(t);
}

void throttler_set_leader(struct throttler *t, bool is_leader)
{
    if (t->is_leader == is_leader)
        return;
    t->is_leader = is_leader;
    uint64_t now_ms = clock_wall_ms();
    if (is_leader) {
        for (size_t i = 0; i < t->nclusters; i++)
            for (size_t j = 0; j < t->clusters[i].nhosts; j++)
                probe_start(t->clusters[i].hosts[j]->probe, now_ms);
    } else {
        for (size_t i = 0; i < t->nclusters; i++)
            t->clusters[i].has_value = false;
        rebuild_metrics(t);
        publish(t, now_ms);
    }
}

bool throttler_is_leader(const struct throttler *t)
{
    return t->is_leader;
}

void throttler_set_leader_status(struct throttler *t, const struct snap_leader *l)
{
    snap_leaders_unref(t->p_leader);
    t->p_leader = snap_leaders_new(l);
    publish(t, clock_wall_ms());
}

int throttler_throttle_app(struct throttler *t, const char *key, bool has_ttl, int64_t ttl_min,
                           bool has_ratio, double ratio, struct err *err)
{
    int rc = app_throttle_set(&t->apps, key, has_ttl, ttl_min, has_ratio, ratio, clock_wall_ms(),
                              NULL, err);
    if (rc < 0)
        return rc;
    rebuild_apps(t);
    publish(t, clock_wall_ms());
    return 0;
}

void throttler_unthrottle_app(struct throttler *t, const char *key)
{
    app_throttle_remove(&t->apps, key);
    rebuild_apps(t);
    publish(t, clock_wall_ms());
}

int throttler_skip_host(struct throttler *t, const char *host, bool has_ttl, int64_t ttl_min,
                        struct err *err)
{
    uint64_t now_ms = clock_wall_ms();
    int rc = skipped_hosts_add(&t->skipped, host, has_ttl, ttl_min, now_ms, NULL, err);
    if (rc < 0)
        return rc;
    rebuild_hosts(t);
    reapply_all_hosts(t, now_ms);
    publish(t, now_ms);
    return 0;
}

void throttler_recover_host(struct throttler *t, const char *host)
{
    uint64_t now_ms = clock_wall_ms();
    skipped_hosts_remove(&t->skipped, host);
    rebuild_hosts(t);
    reapply_all_hosts(t, now_ms);
    publish(t, now_ms);
}

void throttler_put_app(struct throttler *t, const char *key, uint64_t expire_at_ms, double ratio)
{
    app_throttle_put(&t->apps, key, expire_at_ms, ratio);
    rebuild_apps(t);
    t->publish_pending = true;
}

void throttler_remove_app(struct throttler *t, const char *key)
{
    app_throttle_remove(&t->apps, key);
    rebuild_apps(t);
}

void throttler_remove_skipped_host(struct throttler *t, const char *host)
{
    skipped_hosts_remove(&t->skipped, host);
    rebuild_hosts(t);
    reapply_all_hosts(t, clock_wall_ms());
}

void throttler_put_skipped_host(struct throttler *t, const char *host, uint64_t expire_at_ms)
{
    skipped_hosts_put(&t->skipped, host, expire_at_ms);
    rebuild_hosts(t);
    reapply_all_hosts(t, clock_wall_ms());
    t->publish_pending = true;
}

void throttler_clear_apps(struct throttler *t)
{
    app_throttle_clear(&t->apps, clock_wall_ms());
    rebuild_apps(t);
    t->publish_pending = true;
}

void throttler_replace_apps(struct throttler *t, const struct throttler_app *v, size_t n)
{
    /* A reload every 10 s usually changes nothing: then nothing is rebuilt. */
    bool changed = false;
    app_throttle_sync_begin(&t->apps);
    for (size_t i = 0; i < n; i++)
        changed |= app_throttle_sync_put(&t->apps, v[i].key, v[i].expire_at_ms, v[i].ratio,
                                         RELOAD_EXPIRY_SLACK_MS);
    changed |= app_throttle_sync_end(&t->apps);
    if (!changed)
        return;
    rebuild_apps(t);
    publish(t, clock_wall_ms());
}

void throttler_replace_skipped_hosts(struct throttler *t, const struct throttler_host *v, size_t n)
{
    bool changed = false;
    skipped_hosts_sync_begin(&t->skipped);
    for (size_t i = 0; i < n; i++)
        changed |= skipped_hosts_sync_put(&t->skipped, v[i].host, v[i].expire_at_ms,
                                          RELOAD_EXPIRY_SLACK_MS);
    changed |= skipped_hosts_sync_end(&t->skipped);
    if (!changed)
        return;
    uint64_t now_ms = clock_wall_ms();
    rebuild_hosts(t);
    reapply_all_hosts(t, now_ms);
    publish(t, now_ms);
}

void throttler_publish(struct throttler *t)
{
    publish(t, clock_wall_ms());
}

void throttler_clear_skipped_hosts(struct throttler *t)
{
    skipped_hosts_clear(&t->skipped);
    rebuild_hosts(t);
    reapply_all_hosts(t, clock_wall_ms());
    t->publish_pending = true;
}

int throttler_plan_throttle_app(struct throttler *t, const char *key, bool has_ttl, int64_t ttl_min,
                                bool has_ratio, double ratio, uint64_t now_ms,
                                uint64_t *expire_at_ms, double *ratio_out, struct err *err)
{
    int rc = app_throttle_check_room(&t->apps, key, 0, err);
    if (rc < 0)
        return rc;
    /* Run the real rules on a scratch set holding only the current entry. */
    struct app_throttle scratch;
    app_throttle_init_empty(&scratch);
    const struct app_throttle_entry *cur = app_throttle_get(&t->apps, key, now_ms);
    if (cur != NULL)
        app_throttle_put(&scratch, key, cur->expire_at_ms, cur->ratio);
    struct app_throttle_entry e;
    rc = app_throttle_set(&scratch, key, has_ttl, ttl_min, has_ratio, ratio, now_ms, &e, err);
    app_throttle_deinit(&scratch);
    if (rc < 0)
        return rc;
    *expire_at_ms = e.expire_at_ms;
    *ratio_out = e.ratio;
    return 0;
}

int throttler_plan_skip_host(struct throttler *t, const char *host, bool has_ttl, int64_t ttl_min,
                             uint64_t now_ms, uint64_t *expire_at_ms, struct err *err)
{
    /* A skip does not depend on the current entry, only on the room left. */
    int rc = skipped_hosts_check_room(&t->skipped, host, 0, err);
    if (rc < 0)
        return rc;
    struct skipped_hosts scratch;
    skipped_hosts_init(&scratch);
    rc = skipped_hosts_add(&scratch, host, has_ttl, ttl_min, now_ms, expire_at_ms, err);
    skipped_hosts_deinit(&scratch);
    return rc;
}

bool throttler_app_is_new(struct throttler *t, const char *key)
{
    return !app_throttle_has(&t->apps, key);
}

bool throttler_host_is_new(struct throttler *t, const char *host)
{
    return !skipped_hosts_has(&t->skipped, host);
}

int throttler_room_for_app(struct throttler *t, const char *key, size_t pending, struct err *err)
{
    return app_throttle_check_room(&t->apps, key, pending, err);
}

int throttler_room_for_host(struct throttler *t, const char *host, size_t pending, struct err *err)
{
    return skipped_hosts_check_room(&t->skipped, host, pending, err);
}

void throttler_publish_pending(struct throttler *t)
{
    if (t->publish_pending)
        publish(t, clock_wall_ms());
}

void throttler_each_app(struct throttler *t,
                        void (*fn)(const char *key, uint64_t expire_at_ms, double ratio, void *arg),
                        void *arg)
{
    const char *key;
    const struct app_throttle_entry *e;
    for (size_t it = 0; app_throttle_next(&t->apps, &it, &key, &e);)
        fn(key, e->expire_at_ms, e->ratio, arg);
}

void throttler_each_skipped_host(struct throttler *t,
                                 void (*fn)(const char *host, uint64_t expire_at_ms, void *arg),
                                 void *arg)
{
    const char *host;
    uint64_t at;
    for (size_t it = 0; skipped_hosts_next(&t->skipped, &it, &host, &at);)
        fn(host, at, arg);
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
        c->share_until_ms = now_ms + SHARE_HEALTH_EXPIRY_MS;
    }
}

void throttler_apply_cmd(struct throttler *t, struct loop_cmd *cmd)
{
    struct err err = {0};
    int rc = 0;
    switch (cmd->kind) {
    case LOOP_CMD_THROTTLE_APP:
        rc = throttler_throttle_app(t, cmd->name, cmd->has_ttl, cmd->ttl_min, cmd->has_ratio,
                                    cmd->ratio, &err);
        break;
    case LOOP_CMD_UNTHROTTLE_APP:
        throttler_unthrottle_app(t, cmd->name);
        break;
    case LOOP_CMD_SKIP_HOST:
        rc = throttler_skip_host(t, cmd->name, cmd->has_ttl, cmd->ttl_min, &err);
        break;
    case LOOP_CMD_RECOVER_HOST:
        throttler_recover_host(t, cmd->name);
        break;
    }
    loop_cmd_finish(t->loop, cmd, rc < 0 ? 500 : 200, rc < 0 ? err.msg : "OK");
}
