/* SPDX-License-Identifier: MIT */
/* A reload of the throttler's config: clusters matched by name between the
 * running and the new config. Kept clusters keep what they probe and what
 * they measured; only a changed login or metric set gives their hosts new
 * probes. Loop thread. */
#include "throttler/throttler_impl.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/token.h"
#include "core/xalloc.h"
#include "log/log.h"
#include "probe/probe.h"

/* Whether hosts probed for @a must be probed anew for @b: another login,
 * or another metric set or query (a probe holds them). */
static bool probes_differ(const struct config_cluster *a, const struct config_cluster *b)
{
    if (strcmp(a->user, b->user) != 0 || strcmp(a->password, b->password) != 0 ||
        strcmp(a->collation, b->collation) != 0 || strcmp(a->metric_query, b->metric_query) != 0 ||
        a->metrics.len != b->metrics.len)
        return true;
    for (size_t i = 0; i < a->metrics.len; i++) {
        if (strcmp(a->metrics.v[i].name, b->metrics.v[i].name) != 0 ||
            strcmp(a->metrics.v[i].query, b->metrics.v[i].query) != 0)
            return true;
    }
    return false;
}

/* Metric @i of @c takes @cc's settings; its probes their CacheMillis. */
static void metric_update(struct cluster *c, size_t i, const struct config_cluster *cc)
{
    struct cluster_metric *cm = &c->metrics[i];
    int64_t cache_before = cm->cache_millis;
    if (i == 0) {
        cm->query = cc->metric_query;
        cm->threshold = cc->throttle_threshold;
        cm->cache_millis = cc->cache_millis;
        cm->ignore_hosts_threshold = cc->ignore_hosts_threshold;
    } else {
        const struct config_metric *m = &cc->metrics.v[i - 1];
        cm->metric = m->name;
        cm->query = m->query;
        cm->threshold = m->threshold;
        cm->cache_millis = m->cache_millis;
        cm->ignore_hosts_threshold = m->ignore_hosts_threshold;
    }
    if (cm->cache_millis == cache_before)
        return;
    for (size_t j = 0; j < c->nhosts; j++)
        probe_set_cache_ms(c->hosts[j]->m[i].probe,
                           cm->cache_millis > 0 ? (uint32_t)cm->cache_millis : 0);
}

/* @c keeps its hosts, probes and aggregates and takes @cc's settings. */
static void cluster_update(struct throttler *t, struct cluster *c, const struct config_cluster *cc,
                           uint64_t now_ms)
{
    c->cfg = cc;
    for (size_t i = 0; i < c->nmetrics; i++)
        metric_update(c, i, cc);
    if (cc->source == CONFIG_SOURCE_STATIC)
        throttler_cluster_set_source(t, c, cc->static_hosts, cc->static_hosts_len, now_ms);
    else
        throttler_cluster_apply_hosts(t, c, now_ms);
}

/* @dst is @old set up anew from @cc: the same hosts (until the inventory
 * says otherwise), each with new probes. @old is released. */
static void cluster_renew(struct throttler *t, struct cluster *dst, struct cluster *old,
                          const struct config_cluster *cc, uint64_t now_ms)
{
    struct config_hostport *source = old->source;
    size_t nsource = old->nsource;
    old->source = NULL;
    old->nsource = 0;
    log_info("throttler: mysql/%s: login or metrics changed: probing its hosts anew", cc->name);
    throttler_cluster_deinit(old);
    throttler_cluster_init(t, dst, cc, now_ms);
    if (cc->source != CONFIG_SOURCE_STATIC && nsource > 0)
        throttler_cluster_set_source(t, dst, source, nsource, now_ms);
    for (size_t i = 0; i < nsource; i++)
        free(source[i].host);
    free(source);
}

static void token_set_free_cb(void *s)
{
    token_set_free(s);
}

/* The running cluster named @name, or SIZE_MAX. */
static size_t find_cluster(const struct throttler *t, const char *name)
{
    for (size_t i = 0; i < t->nclusters; i++)
        if (strcmp(t->clusters[i].cfg->name, name) == 0)
            return i;
    return SIZE_MAX;
}

void throttler_reconfigure(struct throttler *t, const struct config *cfg)
{
    uint64_t now_ms = throttler_now_ms(t);
    size_t n = cfg->clusters_len;
    struct cluster *next = xcalloc(n ? n : 1, sizeof(*next));
    bool *kept = xcalloc(t->nclusters ? t->nclusters : 1, sizeof(*kept));

    for (size_t i = 0; i < n; i++) {
        const struct config_cluster *cc = &cfg->clusters[i];
        size_t at = find_cluster(t, cc->name);
        if (at == SIZE_MAX) {
            log_info("throttler: mysql/%s: added", cc->name);
            throttler_cluster_init(t, &next[i], cc, now_ms);
            continue;
        }
        kept[at] = true;
        struct cluster *old = &t->clusters[at];
        if (probes_differ(old->cfg, cc)) {
            cluster_renew(t, &next[i], old, cc, now_ms);
        } else {
            next[i] = *old;
            cluster_update(t, &next[i], cc, now_ms);
        }
    }
    for (size_t j = 0; j < t->nclusters; j++) {
        if (kept[j])
            continue;
        log_info("throttler: mysql/%s: removed, no longer probed", t->clusters[j].cfg->name);
        throttler_cluster_deinit(&t->clusters[j]);
    }
    free(kept);
    free(t->clusters);
    t->clusters = next;
    t->nclusters = n;
    t->cfg = cfg;
    t->next.control_token = cfg->control_token;
    /* HTTP threads may still match against the old set: it goes after a
     * grace period. */
    struct token_set *old_tokens = t->tokens;
    t->tokens = throttler_tokens_of(cfg);
    t->next.tokens = t->tokens;
    if (old_tokens != NULL)
        snapshot_defer(token_set_free_cb, old_tokens);
    t->next.stale_after_ms = (uint64_t)cfg->check_stale_after_ms;
    t->next.check_details = cfg->check_details;
    throttler_rebuild_metrics(t);
    throttler_rebuild_text(t, now_ms);
    throttler_publish_at(t, now_ms);
}
