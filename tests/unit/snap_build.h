/* SPDX-License-Identifier: MIT */
/* Hand-built snapshot parts for the unit tests that read snapshots: a metric
 * as the throttler would publish it, and the clusters part grouping metrics
 * by cluster. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/jsonfmt.h"
#include "core/limits.h"
#include "core/xalloc.h"
#include "snapshot/snapshot.h"

/* Metric @metric (FRENO_METRIC_DEFAULT or a Metrics name) of @cluster. */
static inline struct snap_metric snap_build_metric(const char *cluster, const char *metric,
                                                   bool has, bool ok, double v, double thr,
                                                   const char *err)
{
    struct snap_metric m = {0};
    bool dflt = strcmp(metric, FRENO_METRIC_DEFAULT) == 0;
    m.name = dflt ? xasprintf("mysql/%s", cluster) : xasprintf("mysql/%s/%s", cluster, metric);
    m.metric = dflt ? FRENO_METRIC_DEFAULT : m.name + strlen(m.name) - strlen(metric);
    m.has_value = has;
    m.ok = ok;
    m.value = v;
    m.threshold = thr;
    m.err = err ? xstrdup(err) : NULL;
    m.retry_after_s = 1;
    m.live = metric_live_new();
    jsonfmt_number(m.value_json, sizeof(m.value_json), v);
    jsonfmt_number(m.threshold_json, sizeof(m.threshold_json), thr);
    return m;
}

/* The cluster name of metric @m ("mysql/<cluster>[/<metric>]"), copied. */
static inline char *snap_build_cluster_name(const struct snap_metric *m)
{
    const char *c = m->name + strlen("mysql/");
    if (strcmp(m->metric, FRENO_METRIC_DEFAULT) == 0)
        return xstrdup(c);
    return xstrndup(c, strlen(c) - strlen(m->metric) - 1);
}

/* The clusters part of the @n metrics at @mv (taken, array and all), which
 * come grouped by cluster, clusters sorted by name, each cluster's default
 * metric first. */
static inline struct snap_clusters *snap_build_clusters(struct snap_metric *mv, size_t n)
{
    struct snap_cluster *cv = xcalloc(n ? n : 1, sizeof(*cv));
    size_t nc = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && strcmp(mv[j].metric, FRENO_METRIC_DEFAULT) != 0)
            j++;
        struct snap_cluster *c = &cv[nc++];
        c->name = snap_build_cluster_name(&mv[i]);
        c->metrics = xcalloc(j - i, sizeof(*c->metrics));
        memcpy(c->metrics, &mv[i], (j - i) * sizeof(*c->metrics));
        c->nmetrics = j - i;
        i = j;
    }
    free(mv);
    return snap_clusters_new(cv, nc);
}
