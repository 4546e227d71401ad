/* SPDX-License-Identifier: MIT */
/* Fixed counters: a file-static array of relaxed atomics (one of the three
 * singletons the style allows). Any thread. */
#include "metrics/metrics.h"

#include <stdatomic.h>
#include <stddef.h>

static _Atomic uint64_t counters[METRICS_COUNTER_COUNT];

static const char *const names[METRICS_COUNTER_COUNT] = {
        [METRICS_CHECK_ANY_TOTAL] = "check.any.total",
        [METRICS_CHECK_ANY_ERROR] = "check.any.error",
        [METRICS_CHECK_ANY_INTERNAL_ERROR] = "check.any.internal-error",
        [METRICS_PROBES_TOTAL] = "probes.total",
        [METRICS_PROBES_ERROR] = "probes.error",
        [METRICS_HTTPCHECK_SKIP] = "httpcheck.skip",
        [METRICS_HTTPCHECK_ERROR] = "httpcheck.error",
        [METRICS_HTTPCHECK_200] = "httpcheck.200",
        [METRICS_HTTPCHECK_404] = "httpcheck.404",
        [METRICS_HTTPCHECK_OTHER] = "httpcheck.other",
        [METRICS_CHECK_EVENTS_DROPPED] = "check.events.dropped",
};

void metrics_add(enum metrics_counter c, uint64_t n)
{
    atomic_fetch_add_explicit(&counters[c], n, memory_order_relaxed);
}

void metrics_count_check(int status)
{
    metrics_inc(METRICS_CHECK_ANY_TOTAL);
    if (status != 200)
        metrics_inc(METRICS_CHECK_ANY_ERROR);
    if (status == 500)
        metrics_inc(METRICS_CHECK_ANY_INTERNAL_ERROR);
}

void metrics_observe_probe_latency_us(uint64_t us)
{
    metrics_add(METRICS_PROBES_LATENCY_COUNT, 1);
    metrics_add(METRICS_PROBES_LATENCY_SUM_US, us);
    uint64_t max =
            atomic_load_explicit(&counters[METRICS_PROBES_LATENCY_MAX_US], memory_order_relaxed);
    while (us > max &&
           !atomic_compare_exchange_weak_explicit(&counters[METRICS_PROBES_LATENCY_MAX_US], &max,
                                                  us, memory_order_relaxed, memory_order_relaxed)) {
    }
}

uint64_t metrics_get(enum metrics_counter c)
{
    return atomic_load_explicit(&counters[c], memory_order_relaxed);
}

const char *metrics_name(enum metrics_counter c)
{
    return names[c];
}
