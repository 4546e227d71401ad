/* SPDX-License-Identifier: MIT */
/* Metrics besides MetricQuery's (docs/config.md#metrics): decoding a Metrics
 * object, which maps a metric name to its own query, threshold, cache and
 * IgnoreHostsThreshold; and the merge by name that gives each cluster every
 * Stores.MySQL metric, its own entries and its null entries applied on top.
 * Main thread. */
#include "config/config_load.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "core/limits.h"
#include "core/text.h"
#include "core/xalloc.h"

static void metric_deinit(struct config_metric *m)
{
    free(m->name);
    free(m->query);
    *m = (struct config_metric){0};
}

static void metric_copy(struct config_metric *dst, const struct config_metric *src)
{
    *dst = *src;
    dst->name = xstrdup(src->name);
    dst->query = xstrdup(src->query ? src->query : "");
}

void config_metrics_clear(struct config_metrics *ms)
{
    for (size_t i = 0; i < ms->len; i++)
        metric_deinit(&ms->v[i]);
    free(ms->v);
    ms->v = NULL;
    ms->len = 0;
}

void config_metrics_copy(struct config_metrics *dst, const struct config_metrics *src)
{
    config_metrics_clear(dst);
    dst->v = xcalloc(src->len ? src->len : 1, sizeof(*dst->v));
    for (size_t i = 0; i < src->len; i++)
        metric_copy(&dst->v[i], &src->v[i]);
    dst->len = src->len;
}

static struct config_metric *metrics_find(struct config_metrics *ms, const char *name)
{
    for (size_t i = 0; i < ms->len; i++)
        if (strcmp(ms->v[i].name, name) == 0)
            return &ms->v[i];
    return NULL;
}

/* Takes @m (its strings too) into @ms, in place of an entry of its name. */
static void metrics_put(struct config_metrics *ms, struct config_metric *m)
{
    struct config_metric *old = metrics_find(ms, m->name);
    if (old != NULL) {
        metric_deinit(old);
        *old = *m;
        return;
    }
    ms->v = xrealloc(ms->v, (ms->len + 1) * sizeof(*ms->v));
    ms->v[ms->len++] = *m;
}

static void metrics_remove(struct config_metrics *ms, size_t i)
{
    metric_deinit(&ms->v[i]);
    memmove(&ms->v[i], &ms->v[i + 1], (ms->len - i - 1) * sizeof(*ms->v));
    ms->len--;
}

/* A name is one part of the metric names "mysql/<cluster>/<name>", of
 * memcache keys and of ?metric=: plain ASCII, no separator of any of them. */
static bool is_metric_name(const char *name)
{
    return text_is_metric_name(name) && strcasecmp(name, FRENO_METRIC_DEFAULT) != 0;
}

/* Decodes the members of the metric object @v (shown at @path) into @m. */
static void decode_metric(struct config_loader *ld, json_t *v, const char *path,
                          struct config_metric *m)
{
    const char *name;
    json_t *mv;
    json_object_foreach(v, name, mv)
    {
        char *kpath = NULL;
        const struct config_key *k = config_member_key(ld, CONFIG_METRIC_PATH, path, name, &kpath);
        if (k != NULL && !json_is_null(mv))
            config_decode_value(ld, k, mv, (char *)m + k->offset, kpath);
        free(kpath);
    }
}

void config_metrics_decode(struct config_loader *ld, json_t *v, const char *path,
                           struct config_metrics *ms)
{
    if (!json_is_object(v)) {
        config_type_error(ld, NULL, v, path, "an object");
        return;
    }
    if (json_object_size(v) > CONFIG_METRICS_ENTRIES_MAX) {
        config_diag_error(ld, ld->file, "%s: %zu entries; at most %d are read", path,
                          json_object_size(v), CONFIG_METRICS_ENTRIES_MAX);
        return;
    }
    const char *name;
    json_t *mv;
    json_object_foreach(v, name, mv)
    {
        char *cname = config_clean(name);
        char *mpath = xasprintf("%s.%s", path, cname);
        if (!is_metric_name(name)) {
            config_diag_error(ld, ld->file,
                              "%s: a metric name is 1 to %d letters, digits, '_' or '-', "
                              "and not \"" FRENO_METRIC_DEFAULT "\"",
                              mpath, FRENO_METRIC_NAME_MAX);
        } else if (json_is_null(mv) || json_is_object(mv)) {
            struct config_metric m = {.name = xstrdup(name), .drop = json_is_null(mv)};
            if (json_is_object(mv))
                decode_metric(ld, mv, mpath, &m);
            if (m.query == NULL)
                m.query = xstrdup("");
            metrics_put(ms, &m);
        } else {
            config_type_error(ld, NULL, mv, mpath, "an object or null");
        }
        free(mpath);
        free(cname);
    }
}

static int cmp_metric(const void *a, const void *b)
{
    return strcmp(((const struct config_metric *)a)->name, ((const struct config_metric *)b)->name);
}

static bool too_many(const struct config_metrics *ms)
{
    return ms->len > FRENO_METRICS_MAX - 1;
}

/* Sorts @ms and reports more than the metrics a cluster may have. */
static void finish_list(struct config_loader *ld, struct config_metrics *ms, const char *file,
                        const char *path)
{
    if (ms->len > 0)
        qsort(ms->v, ms->len, sizeof(*ms->v), cmp_metric);
    if (too_many(ms))
        config_diag_error(ld, file, "%s: %zu metrics; at most %d besides MetricQuery's", path,
                          ms->len, FRENO_METRICS_MAX - 1);
}

void config_metrics_finish_defaults(struct config_loader *ld, struct config_metrics *ms,
                                    const char *file)
{
    for (size_t i = ms->len; i-- > 0;)
        if (ms->v[i].drop)
            metrics_remove(ms, i);
    finish_list(ld, ms, file, "Stores.MySQL.Metrics");
}

/* Fills the zero members of @own from @from, the metric it overrides. */
static void inherit_members(struct config_metric *own, const struct config_metric *from)
{
    if (own->query[0] == '\0') {
        free(own->query);
        own->query = xstrdup(from->query);
    }
    if (own->threshold == 0)
        own->threshold = from->threshold;
    if (own->cache_millis == 0)
        own->cache_millis = from->cache_millis;
    if (own->ignore_hosts_threshold == 0)
        own->ignore_hosts_threshold = from->ignore_hosts_threshold;
}

void config_metrics_finish_cluster(struct config_loader *ld, struct config_metrics *ms,
                                   const struct config_metrics *defaults, const char *file,
                                   const char *cpath)
{
    struct config_metrics own = *ms;
    *ms = (struct config_metrics){0};
    config_metrics_copy(ms, defaults);
    for (size_t i = 0; i < own.len; i++) {
        struct config_metric *m = &own.v[i];
        struct config_metric *from = metrics_find(ms, m->name);
        if (m->drop) {
            if (from != NULL)
                metrics_remove(ms, (size_t)(from - ms->v));
            continue;
        }
        if (from != NULL)
            inherit_members(m, from);
        metrics_put(ms, m);
        *m = (struct config_metric){0};
    }
    config_metrics_clear(&own);
    char *path = xasprintf("%s.Metrics", cpath);
    /* Too many in Stores.MySQL is reported once, there. */
    if (too_many(defaults) && ms->len > 0)
        qsort(ms->v, ms->len, sizeof(*ms->v), cmp_metric);
    else
        finish_list(ld, ms, file, path);
    for (size_t i = 0; i < ms->len; i++)
        if (ms->v[i].query[0] == '\0')
            config_diag_warn(ld, file, "%s.%s.Query: empty, so the metric is replication lag", path,
                             ms->v[i].name);
    free(path);
}
