/* SPDX-License-Identifier: MIT */
/* Process-wide counters and gauges with fixed names, as relaxed atomics that
 * any thread may bump without a lock. Per-app and per-store counters are
 * kept by the loop (check_counters.h); render.h shows both
 * (docs/api.md#metrics-and-counters). */
#pragma once

#include <stdint.h>

enum metrics_counter {
    METRICS_CHECK_ANY_TOTAL = 0,
    METRICS_CHECK_ANY_ERROR,
    METRICS_CHECK_ANY_INTERNAL_ERROR,
    METRICS_PROBES_TOTAL,
    METRICS_PROBES_ERROR,
    METRICS_PROBES_LATENCY_COUNT,  /* probes.latency: number of samples */
    METRICS_PROBES_LATENCY_SUM_US, /* probes.latency: sum in microseconds */
    METRICS_PROBES_LATENCY_MAX_US, /* probes.latency: max since start (gauge-like) */
    METRICS_HTTPCHECK_SKIP,
    METRICS_HTTPCHECK_ERROR,
    METRICS_HTTPCHECK_200,
    METRICS_HTTPCHECK_404,
    METRICS_HTTPCHECK_OTHER,
    METRICS_CHECK_EVENTS_DROPPED, /* check records lost because a ring was full */
    METRICS_COUNTER_COUNT,
};

/* Adds @n to counter @c. Any thread. */
void metrics_add(enum metrics_counter c, uint64_t n);
static inline void metrics_inc(enum metrics_counter c)
{
    metrics_add(c, 1);
}
/* Counts one check answered with HTTP @status in check.any.total, .error
 * (not 200) and .internal-error (500). Any thread. */
void metrics_count_check(int status);
/* Records one probes.latency sample. Any thread. */
void metrics_observe_probe_latency_us(uint64_t us);
uint64_t metrics_get(enum metrics_counter c);
/* The name used in /debug/vars for @c ("check.any.total"), or NULL for the
 * internal latency parts. */
const char *metrics_name(enum metrics_counter c);
