/* SPDX-License-Identifier: MIT */
/* The check decision (docs/api.md#check-decision) over a published
 * snapshot: allocation-free, lock-free, no I/O. The only shared write is the
 * low-priority mark, an atomic in each metric's live state. Any thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/limits.h"
#include "snapshot/snapshot.h"

#define CHECK_APP_FRENO              "freno"
#define CHECK_APP_SHARE_DOMAIN       "freno-share-domain"
#define CHECK_LOW_PRIORITY_WINDOW_MS 1000
/* Retry-After of a refusal by an operator throttle that always denies and
 * never expires: nothing but an operator ends it, so come back in a minute. */
#define CHECK_RETRY_UNTIL_UNTHROTTLED_S 60

struct check_request {
    const char *app;
    const char *store_type;
    const char *store_name;
    /* NULL: every metric of the cluster that applies to the app; else the
     * one metric of that name (FRENO_METRIC_DEFAULT or a Metrics name). */
    const char *metric;
    bool low_priority;
    bool read_check;
    /* > 0 replaces the threshold of the metric read: the one named by
     * @metric, else MetricQuery's. */
    double override_threshold;
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

/* Why a check got its answer. */
enum check_reason {
    CHECK_REASON_NONE,         /* 200: every metric that applies is within its threshold */
    CHECK_REASON_NOT_MYSQL,    /* 404: the store type is not mysql */
    CHECK_REASON_NO_APP,       /* 417: no app named */
    CHECK_REASON_LOW_PRIORITY, /* 417: ?p=low while the deciding metric refused a normal check */
    CHECK_REASON_THROTTLED,    /* 417: the operator throttle in check_result.throttle */
    CHECK_REASON_STALE,        /* 500: the snapshot cannot be vouched for */
    CHECK_REASON_NO_CLUSTER,   /* 404: no such cluster */
    CHECK_REASON_NO_METRIC,    /* 404: the cluster has no metric of the name asked for */
    CHECK_REASON_METRIC,       /* the deciding metric's own status: 404, 500 or 429 */
};

/* Where the threshold a metric holds an app to comes from. */
enum check_threshold_from {
    CHECK_THRESHOLD_CLUSTER,     /* the cluster's own */
    CHECK_THRESHOLD_READ,        /* the threshold of a /check-read path */
    CHECK_THRESHOLD_RULE,        /* a per-app rule's absolute threshold */
    CHECK_THRESHOLD_RULE_FACTOR, /* a per-app rule's factor of the cluster's */
};

/* What one metric says about a check. The strings are static or owned by
 * the snapshot: use them before snapshot_release(). */
struct check_metric {
    const struct snap_metric *m;
    int status;       /* 200; 429 above the threshold or refused by ShareDomain; 500; 404 */
    bool over;        /* 429 because the value is above the threshold */
    double threshold; /* the threshold the app is held to */
    const char *threshold_json; /* it preformatted, or NULL when the caller formats it */
    const char *message;        /* as the Message of an answer this metric decides */
    enum check_threshold_from threshold_from;
};

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

    /* Extensions (docs/api.md#check-details): always filled. */
    bool details; /* the answer shows them: CheckDetails, a cluster with Metrics, or ?metric= */
    enum check_reason reason;
    const struct snap_cluster *cluster; /* the cluster checked, when known */
    /* Index into metrics[] of the metric that decided (CHECK_REASON_METRIC,
     * CHECK_REASON_LOW_PRIORITY, and 200 when a metric applies), or -1. */
    int decided_by;
    const struct snap_app *throttle; /* CHECK_REASON_THROTTLED: the entry that denied */
    /* The per-app rule that held the app ("app/store", else "app"; not
     * expired), or NULL: no rule, and the answer is the original's. */
    const struct snap_rule *rule;
    /* Seconds a client should wait before it asks again; 0: no Retry-After
     * (200, 404). */
    unsigned retry_after_s;
    /* Every metric of the cluster that applies to the check, in the
     * cluster's order (MetricQuery's first). */
    size_t nmetrics;
    struct check_metric metrics[FRENO_METRICS_MAX];
};

/* Decides @r against @s (may be NULL: nothing published yet) at @now_ms;
 * @rnd is a uniform random number in [0,1) for ratio throttles. A known
 * metric that cannot be vouched for (see check_request) answers 500, which
 * /check-if-exists keeps: clients throttle on it, as on a failing metric.
 * With several metrics the answer is that of the worst one: the highest
 * status in the order 500, 429, 404, 200, and among equals the first in the
 * cluster's order. */
void check_decide(const struct snapshot *s, const struct check_request *r, uint64_t now_ms,
                  double rnd, struct check_result *out);
