/* SPDX-License-Identifier: MIT */
/* The check decision (docs/api.md#check-decision) over a published
 * snapshot: allocation-free, lock-free, no I/O. The only shared write is the
 * low-priority mark, an atomic in the metric's live state. Any thread. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "snapshot/snapshot.h"

#define CHECK_APP_FRENO              "freno"
#define CHECK_APP_SHARE_DOMAIN       "freno-share-domain"
#define CHECK_LOW_PRIORITY_WINDOW_MS 1000

struct check_request {
    const char *app;
    const char *store_type;
    const char *store_name;
    bool low_priority;
    bool read_check;
    double override_threshold; /* > 0 replaces the configured threshold */
    bool ok_if_not_exists;
    /* Liveness, on the boot clock (clock_boot_ms()): the snapshot's metrics
     * are not vouched for once the loop's last heartbeat is older than the
     * snapshot's stale_after_ms, or once the leader lease it shows has
     * passed. now_boot_ms 0 skips both tests (the loop's own self checks). */
    uint64_t now_boot_ms;
    uint64_t loop_alive_boot_ms;
};

#define CHECK_MSG_LOOP_STALLED  "Metrics are stale: the event loop has stalled"
#define CHECK_MSG_LEASE_EXPIRED "Metrics are stale: the leadership lease has expired"

struct check_result {
    int status;
    double value;
    double threshold;
    /* The strings below are static or owned by the snapshot: use them before
     * snapshot_release(). */
    const char *message;
    /* Value and Threshold preformatted for the body, or NULL when the caller
     * must format the number itself. */
    const char *value_json;
    const char *threshold_json;
    bool known_store; /* store type is mysql: the check is counted */
};

/* Decides @r against @s (may be NULL: nothing published yet) at @now_ms;
 * @rnd is a uniform random number in [0,1) for ratio throttles. A known
 * metric that cannot be vouched for (see check_request) answers 500, which
 * /check-if-exists keeps: clients throttle on it, as on a failing metric. */
void check_decide(const struct snapshot *s, const struct check_request *r, uint64_t now_ms,
                  double rnd, struct check_result *out);
