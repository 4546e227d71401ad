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
#include "metrics/metrics.h"
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
#define NAMED_COUNTERS_MAX     20000
#define RECENT_APPS_MAX        100000
/* A reloaded expiry this close to the stored one is the same expiry: the
 * backend gives whole seconds from its own now(). */
#define RELOAD_EXPIRY_SLACK_MS 1500
/* /debug/vars and /metrics show a throttled_states gauge for this many app
 * throttles at most (the first in key order): rendering is redone every
 * second, and MaxThrottledApps allows far more. */
#define THROTTLED_STATES_MAX 1000

struct host_probe {
    char *host;
    uint16_t port;
    char *key; /* "host:port" */
    struct probe *probe;
    bool http_404; /* the last HTTP check answered 404: left out of aggregation */
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
    struct strmap counters; /* name -> uint64_t * */
    bool counters_full_logged;
    bool recent_full_logged;

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

static void on_timer_closed(uv_handle_t *h)
{
    free(h);
}

static uv_timer_t *timer_start(struct throttler *t, uv_timer_cb cb, uint64_t first_ms,
                               uint64_t every_ms)
{
    uv_timer_t *h = xcalloc(1, sizeof(*h));
    uv_timer_init(loop_uv(t->loop), h);
    h->data = t;
    uv_timer_start(h, cb, first_ms, every_ms);
    return h;
}

static void timer_close(uv_timer_t **h)
{
    if (*h == NULL)
        return;
    uv_timer_stop(*h);
    uv_close((uv_handle_t *)*h, on_timer_closed);
    *h = NULL;
}

/* ---- named counters (check.<app>..., loop-owned) ---- */

static void counter_add(struct throttler *t, const char *name, uint64_t n)
{
    uint64_t *c = strmap_get(&t->counters, name);
    if (c == NULL) {
        if (t->counters.len >= NAMED_COUNTERS_MAX) {
            if (!t->counters_full_logged)
                log_warn(
                        "metrics: %d named counters reached, new app/cluster names are not counted",
                        NAMED_COUNTERS_MAX);
            t->counters_full_logged = true;
            return;
        }
        c = xcalloc(1, sizeof(*c));
        strmap_put(&t->counters, name, c);
    }
    *c += n;
}

static void count_check(struct throttler *t, const char *app, const char *store, int status)
{
    const char *suffixes[3] = {"total", status != 200 ? "error" : NULL,
                               status == 500 ? "internal-error" : NULL};
    char name[512];
    for (int i = 0; i < 3; i++) {
        if (suffixes[i] == NULL)
            continue;
        snprintf(name, sizeof(name), "check.%s.%s", app, suffixes[i]);
        counter_add(t, name, 1);
        snprintf(name, sizeof(name), "check.any.mysql.%s.%s", store, suffixes[i]);
        counter_add(t, name, 1);
        snprintf(name, sizeof(name), "check.%s.mysql.%s.%s", app, store, suffixes[i]);
        counter_add(t, name, 1);
    }
}

static void record_check(struct throttler *t, const char *app, const char *store,
                         const char *client, int status, uint64_t at_ms)
{
    count_check(t, app, store, status);
    if (recent_apps_count(&t->recent) >= RECENT_APPS_MAX) {
        if (!t->recent_full_logged)
            log_warn("recent-apps: %d entries reached, new app/client pairs are not recorded until "
                     "old ones expire",
                     RECENT_APPS_MAX);
        t->recent_full_logged = true;
    } else {
        recent_apps_record(&t->recent, app, client, at_ms);
    }
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

static void rebuild_recents(struct throttler *t)
{
    size_t n = recent_apps_count(&t->recent);
    struct snap_recent *v = xcalloc(n ? n : 1, sizeof(*v));
    size_t i = 0, it = 0;
    const char *key;
    void *val;
    while (i < n && strmap_next(&t->recent.map, &it, &key, &val)) {
        v[i].key = xstrdup(key);
        v[i].checked_at_ms = *(uint64_t *)val;
        i++;
    }
    snap_recents_unref(t->p_recents);
    t->p_recents = snap_recents_new(v, i);
    t->dirty_recent = false;
    t->publish_pending = true;
}

/* Prometheus metric name: freno_ + the name with every other byte as '_'. */
static void prom_name(char *buf, size_t size, const char *name)
{
    size_t o = (size_t)snprintf(buf, size, "freno_");
    for (const char *p = name; *p && o + 1 < size; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!ok)
            c = '_';
        buf[o++] = c;
    }
    buf[o] = '\0';
}

static void emit(json_t *vars, char **prom, size_t *plen, size_t *pcap, const char *name,
                 json_t *value, double num, const char *type)
{
    json_object_set_new(vars, name, value);
    char pn[600], line[700];
    prom_name(pn, sizeof(pn), name);
    int n = snprintf(line, sizeof(line), "# TYPE %s %s\n%s %.17g\n", pn, type, pn, num);
    if (n <= 0)
        return;
    if (*plen + (size_t)n + 1 > *pcap) {
        *pcap = (*pcap + (size_t)n + 1) * 2;
        *prom = xrealloc(*prom, *pcap);
    }
    memcpy(*prom + *plen, line, (size_t)n + 1);
    *plen += (size_t)n;
}

static void rebuild_text(struct throttler *t, uint64_t now_ms)
{
    json_t *vars = json_object();
    size_t plen = 0, pcap = 4096;
    char *prom = xmalloc(pcap);
    prom[0] = '\0';
    for (int i = 0; i < METRICS_COUNTER_COUNT; i++) {
        const char *name = metrics_name(i);
        if (name == NULL)
            continue;
        uint64_t v = metrics_get(i);
        emit(vars, &prom, &plen, &pcap, name, json_integer((json_int_t)v), (double)v, "counter");
    }
    uint64_t lat_n = metrics_get(METRICS_PROBES_LATENCY_COUNT);
    uint64_t lat_sum = metrics_get(METRICS_PROBES_LATENCY_SUM_US);
    uint64_t lat_max = metrics_get(METRICS_PROBES_LATENCY_MAX_US);
    json_t *timer = json_object();
    json_object_set_new(timer, "count", json_integer((json_int_t)lat_n));
    json_object_set_new(timer, "mean",
                        json_real(lat_n ? (double)lat_sum * 1000.0 / (double)lat_n : 0));
    json_object_set_new(timer, "max", json_integer((json_int_t)lat_max * 1000));
    json_object_set_new(vars, "probes.latency", timer);
    emit(vars, &prom, &plen, &pcap, "probes.latency.count", json_integer((json_int_t)lat_n),
         (double)lat_n, "counter");
    json_object_del(vars, "probes.latency.count");
    emit(vars, &prom, &plen, &pcap, "probes.latency.seconds.sum", json_real((double)lat_sum / 1e6),
         (double)lat_sum / 1e6, "counter");
    json_object_del(vars, "probes.latency.seconds.sum");

    size_t it = 0;
    const char *key;
    void *val;
    while (strmap_next(&t->counters, &it, &key, &val)) {
        uint64_t v = *(uint64_t *)val;
        emit(vars, &prom, &plen, &pcap, key, json_integer((json_int_t)v), (double)v, "counter");
    }
    const struct snap_leader *l = t->p_leader ? &t->p_leader->l : NULL;
    bool leader = l && l->is_leader, healthy = l && l->healthy;
    emit(vars, &prom, &plen, &pcap, "consensus.is_leader", json_integer(leader), leader, "gauge");
    emit(vars, &prom, &plen, &pcap, "consensus.is_healthy", json_integer(healthy), healthy,
         "gauge");
    if (t->cfg->backend_host && t->cfg->backend_host[0]) {
        emit(vars, &prom, &plen, &pcap, "backend.mysql.is_leader", json_integer(leader), leader,
             "gauge");
        emit(vars, &prom, &plen, &pcap, "backend.mysql.is_healthy", json_integer(healthy), healthy,
             "gauge");
    }
    char name[512];
    for (size_t i = 0; i < t->nclusters; i++) {
        struct cluster *c = &t->clusters[i];
        if (c->has_value && c->ok) {
            snprintf(name, sizeof(name), "aggregated.mysql.%s", c->cfg->name);
            emit(vars, &prom, &plen, &pcap, name, json_real(c->value), c->value, "gauge");
        }
        if (c->last_healthy_at_ms != 0) {
            int64_t secs = now_ms > c->last_healthy_at_ms
                                   ? (int64_t)((now_ms - c->last_healthy_at_ms) / 1000)
                                   : 0;
            snprintf(name, sizeof(name), "check.mysql.%s.seconds_since_healthy", c->cfg->name);
            emit(vars, &prom, &plen, &pcap, name, json_integer(secs), (double)secs, "gauge");
        }
    }
    size_t shown = 0;
    const struct app_throttle_entry *e;
    for (it = 0; shown < THROTTLED_STATES_MAX && app_throttle_next(&t->apps, &it, &key, &e);) {
        if (e->expire_at_ms != 0 && e->expire_at_ms <= now_ms)
            continue;
        shown++;
        snprintf(name, sizeof(name), "throttled_states.%s", key);
        emit(vars, &prom, &plen, &pcap, name, json_real(e->ratio), e->ratio, "gauge");
    }
    char *dv = json_dumps(vars, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(15));
    json_decref(vars);
    char *dvn = xasprintf("%s\n", dv ? dv : "{}");
    free(dv);
    snap_text_unref(t->p_text);
    t->p_text = snap_text_new(dvn, prom);
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
        const struct probe_result *r = probe_last(c->hosts[i]->probe);
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
    if (recent_apps_sweep(&t->recent, now_ms) > 0) {
        t->dirty_recent = true;
        t->recent_full_logged = false;
    }
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
    recent_apps_init(&t->recent);
    strmap_init(&t->counters);
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
    timer_close(&t->collect_timer);
    timer_close(&t->aggregate_timer);
    timer_close(&t->selfcheck_timer);
    timer_close(&t->slow_timer);
    timer_close(&t->sweep_timer);
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
    size_t it = 0;
    const char *key;
    void *val;
    while (strmap_next(&t->counters, &it, &key, &val))
        free(val);
    strmap_deinit(&t->counters);
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
