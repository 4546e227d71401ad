/* SPDX-License-Identifier: MIT */
/* The throttler's snapshot publication: building the parts HTTP threads
 * read (clusters and their metrics, each metric's host results, app
 * throttles, skipped hosts, recent apps, the /debug/vars and /metrics texts)
 * from the loop's state, and publishing them. A part is rebuilt only when
 * what it shows changed (host results and texts: every second); each owns
 * copies of everything it shows. Loop thread. */
#include "throttler/throttler_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config/config.h"
#include "core/audit.h"
#include "core/jsonfmt.h"
#include "core/limits.h"
#include "core/redact.h"
#include "core/xalloc.h"
#include "metrics/render.h"
#include "probe/probe.h"

/* ---- metrics ---- */

static int cmp_cluster(const void *a, const void *b)
{
    return strcmp(((const struct snap_cluster *)a)->name, ((const struct snap_cluster *)b)->name);
}

/* Formats @x into @buf as the check body prints it ("0" if it cannot). */
static void number_json(char *buf, size_t size, double x)
{
    if (jsonfmt_number(buf, size, x) == 0)
        snprintf(buf, size, "0");
}

/* A refusal by a metric asks clients to come back once its value can have
 * changed: its CacheMillis in whole seconds, rounded up, and 1 s at least
 * (the header counts whole seconds; aggregates are redone every 25 ms). */
static unsigned metric_retry_after_s(const struct cluster_metric *cm)
{
    int64_t s = (cm->cache_millis + 999) / 1000;
    return s < 1 ? 1u : (unsigned)s;
}

static void metric_fill(struct snap_metric *m, const struct cluster_metric *cm)
{
    m->name = xstrdup(cm->name);
    m->metric = strcmp(cm->metric, FRENO_METRIC_DEFAULT) == 0
                        ? FRENO_METRIC_DEFAULT
                        : m->name + strlen(m->name) - strlen(cm->metric);
    m->threshold = cm->threshold;
    number_json(m->threshold_json, sizeof(m->threshold_json), m->threshold);
    m->has_value = cm->has_value;
    m->ok = cm->ok;
    m->value = cm->value;
    number_json(m->value_json, sizeof(m->value_json), m->value);
    m->err = cm->has_value && !cm->ok ? xstrdup(cm->err) : NULL;
    m->host = cm->has_value && cm->host[0] != '\0' ? xstrdup(cm->host) : NULL;
    m->retry_after_s = metric_retry_after_s(cm);
    m->last_healthy_at_ms = cm->last_healthy_at_ms;
    m->share_known = cm->share_known;
    m->share_seconds_since_healthy = cm->share_seconds;
    m->live = metric_live_ref(cm->live);
}

void throttler_rebuild_metrics(struct throttler *t)
{
    struct snap_cluster *v = xcalloc(t->nclusters ? t->nclusters : 1, sizeof(*v));
    for (size_t i = 0; i < t->nclusters; i++) {
        const struct cluster *c = &t->clusters[i];
        v[i].name = xstrdup(c->cfg->name);
        v[i].metrics = xcalloc(c->nmetrics, sizeof(*v[i].metrics));
        v[i].nmetrics = c->nmetrics;
        for (size_t j = 0; j < c->nmetrics; j++)
            metric_fill(&v[i].metrics[j], &c->metrics[j]);
    }
    qsort(v, t->nclusters, sizeof(*v), cmp_cluster);
    snap_clusters_unref(t->next.clusters);
    t->next.clusters = snap_clusters_new(v, t->nclusters);
    t->dirty_metrics = false;
    t->publish_pending = true;
}

static int cmp_probe_set(const void *a, const void *b)
{
    return strcmp(((const struct snap_probe_set *)a)->metric,
                  ((const struct snap_probe_set *)b)->metric);
}

/* The probes part: each metric's hosts and their last results. */
static void rebuild_probes(struct throttler *t)
{
    size_t n = 0;
    for (size_t i = 0; i < t->nclusters; i++)
        n += t->clusters[i].nmetrics;
    struct snap_probe_set *v = xcalloc(n ? n : 1, sizeof(*v));
    n = 0;
    for (size_t i = 0; i < t->nclusters; i++) {
        const struct cluster *c = &t->clusters[i];
        for (size_t j = 0; j < c->nmetrics; j++) {
            struct snap_probe_set *set = &v[n++];
            set->metric = xstrdup(c->metrics[j].name);
            set->v = xcalloc(c->nhosts ? c->nhosts : 1, sizeof(*set->v));
            set->len = c->nhosts;
            for (size_t k = 0; k < c->nhosts; k++) {
                const struct host_probe *h = c->hosts[k];
                const struct probe_result *r = probe_last(h->m[j].probe);
                struct snap_probe *p = &set->v[k];
                p->host = xstrdup(h->key);
                p->at_ms = r->status == PROBE_NONE_YET ? 0 : r->at_ms;
                p->ok = r->status == PROBE_OK;
                p->value = p->ok ? r->value : 0;
                p->err = r->status == PROBE_ERR || r->status == PROBE_ERR_DIAL ? xstrdup(r->msg)
                                                                               : NULL;
                p->http_404 = h->http_404;
                p->probe_errors = h->m[j].probe_errors;
            }
        }
    }
    qsort(v, n, sizeof(*v), cmp_probe_set);
    snap_probes_unref(t->next.probes);
    t->next.probes = snap_probes_new(v, n);
}

/* ---- app throttles and skipped hosts ---- */

void throttler_mark_apps(struct throttler *t)
{
    t->dirty_apps = true;
    t->publish_pending = true;
}

void throttler_mark_hosts(struct throttler *t)
{
    t->dirty_hosts = true;
    t->publish_pending = true;
}

static void app_fill(void *dst, char *key, const void *value)
{
    const struct app_throttle_entry *e = value;
    *(struct snap_app *)dst =
            (struct snap_app){.key = key, .expire_at_ms = e->expire_at_ms, .ratio = e->ratio};
}

static void host_fill(void *dst, char *key, const void *value)
{
    *(struct snap_host *)dst =
            (struct snap_host){.host = key, .expire_at_ms = *(const uint64_t *)value};
}

static void rule_fill(void *dst, char *key, const void *value)
{
    const struct throttler_rule_entry *e = value;
    struct snap_rule *r = dst;
    r->key = key;
    r->expire_at_ms = e->expire_at_ms;
    memcpy(&r->rule, &e->rule, sizeof(r->rule));
}

/* Rebuilds the app throttle and skipped host parts marked changed. Entries
 * come in key order, which the snapshot's binary search needs; the names
 * are packed into one block, so 100,000 entries cost a few milliseconds to
 * copy rather than 100,000 allocations. */
static void build_operator_parts(struct throttler *t)
{
    char *block;
    if (t->dirty_apps) {
        struct snap_app *apps = opset_export(&t->apps.set, sizeof(*apps), app_fill, &block);
        snap_apps_unref(t->next.apps);
        t->next.apps = snap_apps_new_packed(apps, opset_len(&t->apps.set), block);
    }
    if (t->dirty_hosts) {
        struct snap_host *hosts = opset_export(&t->skipped.set, sizeof(*hosts), host_fill, &block);
        snap_hosts_unref(t->next.hosts);
        t->next.hosts = snap_hosts_new_packed(hosts, opset_len(&t->skipped.set), block);
    }
    if (t->dirty_rules) {
        struct snap_rule *rules = opset_export(&t->rules, sizeof(*rules), rule_fill, &block);
        snap_rules_unref(t->next.rules);
        t->next.rules = snap_rules_new_packed(rules, opset_len(&t->rules), block);
    }
    t->dirty_apps = false;
    t->dirty_hosts = false;
    t->dirty_rules = false;
}

/* ---- recent apps ---- */

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
void throttler_rebuild_recents(struct throttler *t)
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
    snap_recents_unref(t->next.recents);
    t->next.recents = snap_recents_new(v, c.len);
    t->dirty_recent = false;
    t->publish_pending = true;
}

/* ---- /debug/vars and /metrics ---- */

/* Fills @hosts (one per probed host of @c) with the results of metric @mi. */
static void hosts_fill(struct metrics_host *hosts, const struct cluster *c, size_t mi)
{
    for (size_t j = 0; j < c->nhosts; j++) {
        const struct probe_result *r = probe_last(c->hosts[j]->m[mi].probe);
        hosts[j].key = c->hosts[j]->key;
        hosts[j].ok = r->status == PROBE_OK;
        hosts[j].value = r->value;
        hosts[j].probe_errors = c->hosts[j]->m[mi].probe_errors;
    }
}

static int64_t seconds_since(uint64_t at_ms, uint64_t now_ms)
{
    return now_ms > at_ms ? (int64_t)((now_ms - at_ms) / 1000) : 0;
}

/* Fills @m for store @c: its MetricQuery's metric as the store itself, and
 * its Metrics in @metrics; @hosts has room for nhosts * nmetrics entries. */
static void store_fill(struct metrics_store *m, const struct cluster *c,
                       struct metrics_metric *metrics, struct metrics_host *hosts, uint64_t now_ms)
{
    const struct cluster_metric *d = &c->metrics[0];
    m->name = c->cfg->name;
    m->threshold = d->threshold;
    m->has_value = d->has_value;
    m->ok = d->ok;
    m->value = d->value;
    m->ever_healthy = d->last_healthy_at_ms != 0;
    m->seconds_since_healthy = seconds_since(d->last_healthy_at_ms, now_ms);
    m->hosts = hosts;
    m->nhosts = c->nhosts;
    hosts_fill(hosts, c, 0);
    m->metrics = metrics;
    m->nmetrics = c->nmetrics - 1;
    for (size_t i = 1; i < c->nmetrics; i++) {
        const struct cluster_metric *cm = &c->metrics[i];
        struct metrics_metric *mm = &metrics[i - 1];
        mm->metric = cm->metric;
        mm->threshold = cm->threshold;
        mm->has_value = cm->has_value;
        mm->ok = cm->ok;
        mm->value = cm->value;
        mm->ever_healthy = cm->last_healthy_at_ms != 0;
        mm->seconds_since_healthy = seconds_since(cm->last_healthy_at_ms, now_ms);
        mm->hosts = hosts + i * c->nhosts;
        hosts_fill(hosts + i * c->nhosts, c, i);
    }
}

/* Fills @st with the active throttles (ratios of the first
 * THROTTLER_THROTTLED_STATES_MAX, borrowed keys) and the active skips;
 * returns the throttle array (caller frees). */
static struct metrics_throttle *operator_fill(struct throttler *t, struct metrics_state *st,
                                              uint64_t now_ms)
{
    size_t cap = app_throttle_count(&t->apps);
    if (cap > THROTTLER_THROTTLED_STATES_MAX)
        cap = THROTTLER_THROTTLED_STATES_MAX;
    struct metrics_throttle *thr = xcalloc(cap ? cap : 1, sizeof(*thr));
    const char *key;
    const struct app_throttle_entry *e;
    for (size_t it = 0; app_throttle_next(&t->apps, &it, &key, &e);) {
        if (e->expire_at_ms != 0 && e->expire_at_ms <= now_ms)
            continue;
        st->throttled_apps++;
        if (st->nthrottled < THROTTLER_THROTTLED_STATES_MAX)
            thr[st->nthrottled++] = (struct metrics_throttle){.key = key, .ratio = e->ratio};
    }
    uint64_t exp;
    for (size_t it = 0; skipped_hosts_next(&t->skipped, &it, &key, &exp);)
        if (exp == 0 || exp > now_ms)
            st->skipped_hosts++;
    st->throttled = thr;
    return thr;
}

void throttler_rebuild_text(struct throttler *t, uint64_t now_ms)
{
    size_t nh = 0, nm = 0;
    for (size_t i = 0; i < t->nclusters; i++) {
        nh += t->clusters[i].nhosts * t->clusters[i].nmetrics;
        nm += t->clusters[i].nmetrics;
    }
    struct metrics_store *stores = xcalloc(t->nclusters ? t->nclusters : 1, sizeof(*stores));
    struct metrics_metric *metrics = xcalloc(nm ? nm : 1, sizeof(*metrics));
    struct metrics_host *hosts = xcalloc(nh ? nh : 1, sizeof(*hosts));
    nh = 0;
    nm = 0;
    for (size_t i = 0; i < t->nclusters; i++) {
        const struct cluster *c = &t->clusters[i];
        store_fill(&stores[i], c, &metrics[nm], &hosts[nh], now_ms);
        nh += c->nhosts * c->nmetrics;
        nm += c->nmetrics;
    }
    const struct snap_leader *l = t->next.leader ? &t->next.leader->l : NULL;
    struct metrics_state st = {
            .is_leader = l && l->is_leader,
            .is_healthy = l && l->healthy,
            .has_backend = t->cfg->backend_host && t->cfg->backend_host[0],
            .stores = stores,
            .nstores = t->nclusters,
            .recent_apps = recent_apps_count(&t->recent),
            .recent_apps_evicted = recent_apps_evicted(&t->recent),
            .checks = t->checks,
    };
    struct metrics_throttle *thr = operator_fill(t, &st, now_ms);
    size_t dv_len, prom_len;
    char *dv = metrics_render_debug_vars(&st, &dv_len);
    char *prom = metrics_render_prometheus(&st, &prom_len);
    free(stores);
    free(metrics);
    free(hosts);
    free(thr);
    snap_text_unref(t->next.text);
    t->next.text = snap_text_new(dv, dv_len, prom, prom_len);
    rebuild_probes(t);
    t->publish_pending = true;
}

/* ---- publishing ---- */

void throttler_publish_at(struct throttler *t, uint64_t now_ms)
{
    build_operator_parts(t);
    t->next.built_at_ms = now_ms;
    snapshot_publish(&t->next);
    t->publish_pending = false;
}

void throttler_publish_first(struct throttler *t, uint64_t now_ms)
{
    t->next.hostname = t->hostname;
    t->next.memcache_json = t->memcache_json;
    t->next.control_token = t->cfg->control_token;
    t->next.tokens = t->tokens;
    t->next.stale_after_ms = (uint64_t)t->cfg->check_stale_after_ms;
    t->next.check_details = t->cfg->check_details;
    throttler_rebuild_metrics(t);
    throttler_mark_apps(t);
    throttler_mark_hosts(t);
    throttler_mark_rules(t);
    throttler_rebuild_recents(t);
    throttler_rebuild_text(t, now_ms);
    throttler_publish_at(t, now_ms);
}

void throttler_tick_slow(struct throttler *t)
{
    uint64_t now_ms = throttler_now_ms(t);
    throttler_take_check_records(t);
    if (t->dirty_recent)
        throttler_rebuild_recents(t);
    throttler_rebuild_text(t, now_ms);
    throttler_publish_at(t, now_ms);
}

void throttler_publish(struct throttler *t)
{
    throttler_publish_at(t, throttler_now_ms(t));
}

void throttler_publish_pending(struct throttler *t)
{
    if (t->publish_pending)
        throttler_publish_at(t, throttler_now_ms(t));
}

void throttler_set_leader_status(struct throttler *t, const struct snap_leader *l)
{
    snap_leaders_unref(t->next.leader);
    t->next.leader = snap_leaders_new(l);
    throttler_publish_at(t, throttler_now_ms(t));
}

void throttler_set_audit(struct throttler *t, const struct audit_ring *ring)
{
    size_t len;
    struct audit_record *v = audit_ring_newest_first(ring, &len);
    snap_audit_unref(t->next.audit);
    t->next.audit = snap_audit_new(v, len);
    throttler_publish_at(t, throttler_now_ms(t));
}

char *throttler_memcache_json(const struct config *cfg)
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
