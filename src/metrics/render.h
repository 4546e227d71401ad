/* SPDX-License-Identifier: MIT */
/* Renders the daemon's figures as /metrics (Prometheus text) and /debug/vars
 * (the original's expvar names, JSON). The input is plain data the caller
 * fills in (no daemon types), plus the process counters of metrics.h and the
 * check counters. Client-chosen names appear only as label values and JSON
 * keys, never as metric names. Loop thread (whoever owns the check counters). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct check_counters;

struct metrics_host {
    const char *key;       /* "host:port" */
    bool ok;               /* the last probe succeeded */
    double value;          /* its value, when ok */
    uint64_t probe_errors; /* failed probes seen since the host was added */
};

/* One of a store's Metrics (docs/config.md#metrics); MetricQuery's metric
 * is the store's own figures. */
struct metrics_metric {
    const char *metric; /* its name in Metrics */
    double threshold;
    bool has_value;
    bool ok;
    double value;
    bool ever_healthy;
    int64_t seconds_since_healthy;
    const struct metrics_host *hosts; /* the store's nhosts, with this metric's results */
};

struct metrics_store {
    const char *name; /* cluster name */
    double threshold;
    bool has_value; /* an unexpired aggregate exists */
    bool ok;        /* ... and it is not an error */
    double value;   /* when has_value && ok */
    bool ever_healthy;
    int64_t seconds_since_healthy; /* when ever_healthy */
    const struct metrics_host *hosts;
    size_t nhosts;
    const struct metrics_metric *metrics;
    size_t nmetrics;
};

struct metrics_throttle {
    const char *key; /* "app" or "app/store" */
    double ratio;
};

struct metrics_state {
    bool is_leader;
    bool is_healthy;
    bool has_backend; /* also show backend.mysql.is_leader/is_healthy */
    const struct metrics_store *stores;
    size_t nstores;
    /* Active throttles with their ratio; the caller may list only some. */
    const struct metrics_throttle *throttled;
    size_t nthrottled;
    size_t throttled_apps; /* active throttles in all */
    size_t skipped_hosts;  /* active skips */
    size_t recent_apps;
    uint64_t recent_apps_evicted;
    const struct check_counters *checks; /* may be NULL */
};

/* Returns the Prometheus text for @st (caller frees) and its length in
 * *@len. */
char *metrics_render_prometheus(const struct metrics_state *st, size_t *len);
/* Returns the /debug/vars JSON object for @st, newline-terminated (caller
 * frees), and its length in *@len. */
char *metrics_render_debug_vars(const struct metrics_state *st, size_t *len);
