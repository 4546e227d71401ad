/* SPDX-License-Identifier: MIT */
/* The throttler's snapshot publication: building the parts HTTP threads
 * read (metrics, app throttles, skipped hosts, recent apps, the /debug/vars
 * and /metrics texts) from the loop's state, and publishing them. A part is
 * rebuilt only when what it shows changed; each owns copies of everything
 * it shows. Loop thread. */
#include "throttler/throttler_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config/config.h"
#include "core/jsonfmt.h"
#include "core/redact.h"
#include "core/xalloc.h"
#include "metrics/render.h"
#include "probe/probe.h"

/* ---- metrics ---- */

static int cmp_metric(const void *a, const void *b)
{
    return strcmp(((const struct snap_metric *)a)->cluster,
                  ((const struct snap_metric *)b)->cluster);
}

/* Formats @x into @buf as the check body prints it ("0" if it cannot). */
static void number_json(char *buf, size_t size, double x)
{
    if (jsonfmt_number(buf, size, x) == 0)
        snprintf(buf, size, "0");
}

static void metric_fill(struct snap_metric *m, const struct cluster *c)
{
    m->name = xstrdup(c->metric_name);
    m->cluster = m->name + strlen("mysql/");
    m->threshold = c->cfg->throttle_threshold;
    number_json(m->threshold_json, sizeof(m->threshold_json), m->threshold);
    m->has_value = c->has_value;
    m->ok = c->ok;
    m->value = c->value;
    number_json(m->value_json, sizeof(m->value_json), m->value);
    m->err = c->has_value && !c->ok ? xstrdup(c->err) : NULL;
    m->last_healthy_at_ms = c->last_healthy_at_ms;
    m->share_known = c->share_known;
    m->share_seconds_since_healthy = c->share_seconds;
    m->live = metric_live_ref(c->live);
}

void throttler_rebuild_metrics(struct throttler *t)
{
    struct snap_metric *v = xcalloc(t->nclusters ? t->nclusters : 1, sizeof(*v));
    for (size_t i = 0; i < t->nclusters; i++)
        metric_fill(&v[i], &t->clusters[i]);
    qsort(v, t->nclusters, sizeof(*v), cmp_metric);
    snap_metrics_unref(t->next.metrics);
    t->next.metrics = snap_metrics_new(v, t->nclusters);
    t->dirty_metrics = false;
    t->publish_pending = true;
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
    t->dirty_apps = false;
    t->dirty_hosts = false;
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

static void store_fill(struct metrics_store *m, const struct cluster *c, struct metrics_host *hosts,
                       uint64_t now_ms)
{
    m->name = c->cfg->name;
    m->threshold = c->cfg->throttle_threshold;
    m->has_value = c->has_value;
    m->ok = c->ok;
    m->value = c->value;
    m->ever_healthy = c->last_healthy_at_ms != 0;
    m->seconds_since_healthy =
            now_ms > c->last_healthy_at_ms ? (int64_t)((now_ms - c->last_healthy_at_ms) / 1000) : 0;
    m->hosts = hosts;
    m->nhosts = c->nhosts;
    for (size_t j = 0; j < c->nhosts; j++) {
        const struct probe_result *r = probe_last(c->hosts[j]->probe);
        hosts[j].key = c->hosts[j]->key;
        hosts[j].ok = r->status == PROBE_OK;
        hosts[j].value = r->value;
        hosts[j].probe_errors = c->hosts[j]->probe_errors;
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
    size_t nh = 0;
    for (size_t i = 0; i < t->nclusters; i++)
        nh += t->clusters[i].nhosts;
    struct metrics_store *stores = xcalloc(t->nclusters ? t->nclusters : 1, sizeof(*stores));
    struct metrics_host *hosts = xcalloc(nh ? nh : 1, sizeof(*hosts));
    nh = 0;
    for (size_t i = 0; i < t->nclusters; i++) {
        store_fill(&stores[i], &t->clusters[i], &hosts[nh], now_ms);
        nh += t->clusters[i].nhosts;
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
    free(hosts);
    free(thr);
    snap_text_unref(t->next.text);
    t->next.text = snap_text_new(dv, dv_len, prom, prom_len);
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
    t->next.stale_after_ms = (uint64_t)t->cfg->check_stale_after_ms;
    throttler_rebuild_metrics(t);
    throttler_mark_apps(t);
    throttler_mark_hosts(t);
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
