/* SPDX-License-Identifier: MIT */
/* The throttler's host sets: which hosts each cluster probes (one probe per
 * host and metric), rebuilt from the inventory's list after IgnoreHosts,
 * duplicates and skipped hosts are taken out, and the operator's skipped
 * hosts themselves. A host present before and after a rebuild keeps its
 * probes. Loop thread. */
#include "throttler/throttler_impl.h"

#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/limits.h"
#include "core/xalloc.h"
#include "log/log.h"
#include "probe/probe.h"

static void host_probe_free(struct host_probe *h)
{
    if (h == NULL)
        return;
    for (size_t i = 0; i < FRENO_METRICS_MAX; i++)
        probe_free(h->m[i].probe);
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

/* Whether @key is among the first @n hosts of @v. */
static bool key_is_listed(struct host_probe *const *v, size_t n, const char *key)
{
    for (size_t j = 0; j < n; j++)
        if (strcmp(v[j]->key, key) == 0)
            return true;
    return false;
}

/* Takes the probed host named @key out of @c's current set (its slot
 * becomes NULL), or returns NULL when it is not there. */
static struct host_probe *take_host(struct cluster *c, const char *key)
{
    for (size_t j = 0; j < c->nhosts; j++) {
        struct host_probe *h = c->hosts[j];
        if (h != NULL && strcmp(h->key, key) == 0) {
            c->hosts[j] = NULL;
            return h;
        }
    }
    return NULL;
}

/* A new probed host @hp of @c under @key (owned from now on), with a probe
 * for each of @c's metrics. */
static struct host_probe *host_probe_new(struct throttler *t, const struct cluster *c,
                                         const struct config_hostport *hp, char *key)
{
    struct host_probe *h = xcalloc(1, sizeof(*h));
    h->host = xstrdup(hp->host);
    h->port = hp->port;
    h->key = key;
    for (size_t i = 0; i < c->nmetrics; i++) {
        const struct cluster_metric *cm = &c->metrics[i];
        struct probe_params pp = {
                .host = hp->host,
                .port = hp->port,
                .user = c->cfg->user,
                .password = c->cfg->password,
                .query = cm->query,
                .timeout_ms = THROTTLER_PROBE_TIMEOUT_MS,
                .cache_ms = cm->cache_millis > 0 ? (uint32_t)cm->cache_millis : 0,
                .collation = c->cfg->collation,
                .connect_gate = &t->connect_gate,
                /* Log lines name the metric: "main" or "main/threads". */
                .cluster = cm->name + strlen("mysql/"),
        };
        h->m[i].probe = probe_new(t->loop, &pp);
    }
    log_info("throttler: %s: probing %s", c->metrics[0].name, h->key);
    return h;
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
        if (key_is_listed(next, n, key) || host_is_ignored(c->cfg, key) ||
            skipped_hosts_is_skipped(&t->skipped, hp->host, now_ms)) {
            free(key);
            continue;
        }
        struct host_probe *keep = take_host(c, key);
        if (keep == NULL) {
            keep = host_probe_new(t, c, hp, key);
            key = NULL;
        }
        free(key);
        next[n++] = keep;
    }
    for (size_t j = 0; j < c->nhosts; j++) {
        if (c->hosts[j] != NULL)
            log_info("throttler: %s: no longer probing %s", c->metrics[0].name, c->hosts[j]->key);
        host_probe_free(c->hosts[j]);
    }
    free(c->hosts);
    c->hosts = next;
    c->nhosts = n;
    if (t->is_leader)
        for (size_t j = 0; j < n; j++)
            for (size_t i = 0; i < c->nmetrics; i++)
                probe_start(next[j]->m[i].probe, now_ms);
}

static void source_free(struct cluster *c)
{
    for (size_t i = 0; i < c->nsource; i++)
        free(c->source[i].host);
    free(c->source);
    c->source = NULL;
    c->nsource = 0;
}

static void set_source(struct throttler *t, struct cluster *c, const struct config_hostport *hosts,
                       size_t n, uint64_t now_ms)
{
    source_free(c);
    c->source = xcalloc(n ? n : 1, sizeof(*c->source));
    for (size_t i = 0; i < n; i++) {
        c->source[i].host = xstrdup(hosts[i].host);
        c->source[i].port = hosts[i].port;
    }
    c->nsource = n;
    apply_hosts(t, c, now_ms);
}

/* Metric @i of @c: MetricQuery's for 0, else Metrics entry @i - 1. */
static void metric_init(struct cluster_metric *cm, const struct config_cluster *cfg, size_t i)
{
    if (i == 0) {
        cm->metric = FRENO_METRIC_DEFAULT;
        cm->name = xasprintf("mysql/%s", cfg->name);
        cm->query = cfg->metric_query;
        cm->threshold = cfg->throttle_threshold;
        cm->cache_millis = cfg->cache_millis;
        cm->ignore_hosts_threshold = cfg->ignore_hosts_threshold;
    } else {
        const struct config_metric *m = &cfg->metrics.v[i - 1];
        cm->metric = m->name;
        cm->name = xasprintf("mysql/%s/%s", cfg->name, m->name);
        cm->query = m->query;
        cm->threshold = m->threshold;
        cm->cache_millis = m->cache_millis;
        cm->ignore_hosts_threshold = m->ignore_hosts_threshold;
    }
    cm->live = metric_live_new();
}

void throttler_cluster_init(struct throttler *t, struct cluster *c,
                            const struct config_cluster *cfg, uint64_t now_ms)
{
    c->cfg = cfg;
    /* The config refuses more; the bound is asserted where arrays are sized. */
    c->nmetrics = 1 + cfg->metrics.len;
    if (c->nmetrics > FRENO_METRICS_MAX)
        c->nmetrics = FRENO_METRICS_MAX;
    for (size_t i = 0; i < c->nmetrics; i++)
        metric_init(&c->metrics[i], cfg, i);
    if (cfg->source == CONFIG_SOURCE_STATIC)
        set_source(t, c, cfg->static_hosts, cfg->static_hosts_len, now_ms);
}

void throttler_cluster_deinit(struct cluster *c)
{
    for (size_t j = 0; j < c->nhosts; j++)
        host_probe_free(c->hosts[j]);
    free(c->hosts);
    c->hosts = NULL;
    c->nhosts = 0;
    source_free(c);
    for (size_t i = 0; i < c->nmetrics; i++) {
        free(c->metrics[i].name);
        metric_live_unref(c->metrics[i].live);
    }
    c->nmetrics = 0;
}

void throttler_cluster_set_source(struct throttler *t, struct cluster *c,
                                  const struct config_hostport *hosts, size_t n, uint64_t now_ms)
{
    set_source(t, c, hosts, n, now_ms);
}

void throttler_cluster_apply_hosts(struct throttler *t, struct cluster *c, uint64_t now_ms)
{
    apply_hosts(t, c, now_ms);
}

void throttler_apply_all_hosts(struct throttler *t, uint64_t now_ms)
{
    for (size_t i = 0; i < t->nclusters; i++)
        apply_hosts(t, &t->clusters[i], now_ms);
}

void throttler_set_cluster_hosts(struct throttler *t, size_t cluster_idx,
                                 const struct config_hostport *hosts, size_t n)
{
    set_source(t, &t->clusters[cluster_idx], hosts, n, throttler_now_ms(t));
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
        log_info("throttler: %s: %s %s", c->metrics[0].name, h->key,
                 is_404 ? "answers its HTTP check with 404, left out"
                        : "HTTP check no longer 404, counted again");
    }
}

/* ---- skipped hosts ---- */

/* The skipped hosts changed at @now_ms: the snapshot shows them and the
 * probed sets follow at once. Publishes now when @publish, else leaves it
 * pending. */
static void hosts_changed(struct throttler *t, uint64_t now_ms, bool publish)
{
    throttler_mark_hosts(t);
    throttler_apply_all_hosts(t, now_ms);
    if (publish)
        throttler_publish_at(t, now_ms);
}

int throttler_skip_host(struct throttler *t, const char *host, bool has_ttl, int64_t ttl_min,
                        struct err *err)
{
    uint64_t now_ms = throttler_now_ms(t);
    int rc = skipped_hosts_add(&t->skipped, host, has_ttl, ttl_min, now_ms, NULL, err);
    if (rc < 0)
        return rc;
    hosts_changed(t, now_ms, true);
    return 0;
}

void throttler_recover_host(struct throttler *t, const char *host)
{
    skipped_hosts_remove(&t->skipped, host);
    hosts_changed(t, throttler_now_ms(t), true);
}

void throttler_put_skipped_host(struct throttler *t, const char *host, uint64_t expire_at_ms)
{
    skipped_hosts_put(&t->skipped, host, expire_at_ms);
    hosts_changed(t, throttler_now_ms(t), false);
}

void throttler_remove_skipped_host(struct throttler *t, const char *host)
{
    skipped_hosts_remove(&t->skipped, host);
    hosts_changed(t, throttler_now_ms(t), false);
}

void throttler_clear_skipped_hosts(struct throttler *t)
{
    skipped_hosts_clear(&t->skipped);
    hosts_changed(t, throttler_now_ms(t), false);
}

void throttler_replace_skipped_hosts(struct throttler *t, const struct throttler_host *v, size_t n)
{
    bool changed = false;
    skipped_hosts_sync_begin(&t->skipped);
    for (size_t i = 0; i < n; i++)
        changed |= skipped_hosts_sync_put(&t->skipped, v[i].host, v[i].expire_at_ms,
                                          THROTTLER_RELOAD_EXPIRY_SLACK_MS);
    changed |= skipped_hosts_sync_end(&t->skipped);
    if (changed)
        hosts_changed(t, throttler_now_ms(t), true);
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

bool throttler_host_is_new(struct throttler *t, const char *host)
{
    return !skipped_hosts_has(&t->skipped, host);
}

int throttler_room_for_host(struct throttler *t, const char *host, size_t pending, struct err *err)
{
    return skipped_hosts_check_room(&t->skipped, host, pending, err);
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
