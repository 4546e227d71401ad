/* SPDX-License-Identifier: MIT */
/* The last 15 minutes of every cluster's metrics at one point a second, for
 * the dashboard and /metrics-history (docs/api.md#metrics-history). The loop
 * records; HTTP threads copy what they render under the history's own
 * mutex, held for a copy of at most one cluster's rings at a time and never
 * on the check path. Memory: HISTORY_POINTS points of HISTORY_POINT_BYTES
 * per cluster metric. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Points kept per cluster metric: 15 minutes at 1 s. */
#define HISTORY_POINTS 900
/* A point's text as served ("%.6g", at most 13 bytes: "-1.23457e-308"). */
#define HISTORY_POINT_BYTES 13

struct history;

/* One metric of a cluster at one second. */
struct history_sample {
    const char *metric; /* FRENO_METRIC_DEFAULT, or the name of one of its Metrics */
    const char *name;   /* "mysql/<cluster>[/<metric>]", as /aggregated-metrics names it */
    double threshold;
    bool has_value; /* false: no aggregate, or an error one (recorded as null) */
    double value;
};

struct history *history_new(void);
/* NULL does nothing. After every reader and the recorder stopped. */
void history_free(struct history *h);

/* Records @n samples (at most FRENO_METRICS_MAX) of @cluster for the second
 * @t_s (Unix seconds). Seconds skipped since the cluster's last record
 * become nulls; a second already recorded is overwritten; a clock that went
 * back restarts the cluster's rings. A metric the cluster no longer has is
 * dropped, a new one starts empty. Loop thread. */
void history_record(struct history *h, const char *cluster, const struct history_sample *v,
                    size_t n, uint64_t t_s);
/* Drops every cluster not recorded since the previous sweep: called after
 * each round of history_record(), it forgets clusters gone from the config.
 * Loop thread. */
void history_sweep(struct history *h);
/* Drops @cluster's history now (unknown names do nothing). Loop thread. */
void history_remove_cluster(struct history *h, const char *cluster);
/* Cluster metrics held. Any thread. */
size_t history_series_count(struct history *h);

/* Renders the history as JSON (docs/api.md#metrics-history), of @cluster only
 * when not NULL, keeping the points after the second @since_s (0: all). The
 * caller frees the text; *@len gets its length. Sets *@found to whether
 * @cluster is known (true when @cluster is NULL). Any thread. */
char *history_render_json(struct history *h, const char *cluster, uint64_t since_s, size_t *len,
                          bool *found);
