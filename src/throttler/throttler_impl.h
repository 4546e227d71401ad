/* SPDX-License-Identifier: MIT */
/* The throttler's private state and the functions its files offer one
 * another: throttler.c (lifetime, clock, timers, leadership), throttler_hosts.c
 * (probed host sets and skipped hosts), throttler_apps.c (app throttles),
 * throttler_checks.c (aggregation, self checks, check records) and
 * throttler_publish.c (the snapshot parts). Only those files and the
 * throttler's unit test include it. Loop thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/hostport.h"
#include "core/limits.h"
#include "loop/loop.h"
#include "loop/loop_timer.h"
#include "snapshot/snapshot.h"
#include "throttler/app_throttle.h"
#include "throttler/recent_apps.h"
#include "throttler/skipped_hosts.h"
#include "throttler/throttler.h"

#define THROTTLER_COLLECT_INTERVAL_MS    50
#define THROTTLER_AGGREGATE_INTERVAL_MS  25
#define THROTTLER_SELF_CHECK_INTERVAL_MS 100
#define THROTTLER_SLOW_INTERVAL_MS       1000
#define THROTTLER_SWEEP_INTERVAL_MS      5000
#define THROTTLER_TIMERS                 5
/* An aggregate not recomputed for longer than this is dropped. */
#define THROTTLER_AGGREGATE_EXPIRY_MS 5000
/* A ShareDomain report is kept this long unless refreshed. */
#define THROTTLER_SHARE_HEALTH_EXPIRY_MS 5000
#define THROTTLER_PROBE_TIMEOUT_MS       1000
/* Connection handshakes of probes in flight at once; the others wait their
 * turn, in order, with no deadline running. A leader taking over a fleet
 * would otherwise open every connection in the same instant: the servers
 * see a burst of handshakes, and the connector's short-lived handshake
 * memory, interleaved with every connection's long-lived memory, stays
 * resident as holes in the heap (1.4 MB at 500 hosts). At ~5 ms a
 * handshake, 500 hosts still connect within ~50 ms. */
#define THROTTLER_MAX_CONNECTING 64
/* A reloaded expiry this close to the stored one is the same expiry: the
 * backend gives whole seconds from its own now(). */
#define THROTTLER_RELOAD_EXPIRY_SLACK_MS 1500
/* /debug/vars and /metrics show a ratio for this many app throttles at most
 * (the first in key order): rendering is redone every second, and
 * MaxThrottledApps allows far more. */
#define THROTTLER_THROTTLED_STATES_MAX 1000

struct check_counters;
struct config_cluster;
struct config_hostport;
struct probe;

/* What one host holds for one metric of its cluster. */
struct host_metric {
    struct probe *probe;
    uint64_t seen_at_ms;   /* completion time of the last result aggregation looked at */
    uint64_t probe_errors; /* failed results seen by aggregation */
};

struct host_probe {
    char *host;
    uint16_t port;
    char *key;     /* "host:port" */
    bool http_404; /* the last HTTP check answered 404: left out of aggregation */
    /* One probe per metric of the cluster, in the cluster's metric order. */
    struct host_metric m[FRENO_METRICS_MAX];
};

/* One metric of a cluster: what it runs and how it is judged, and its
 * aggregate. */
struct cluster_metric {
    const char *metric; /* FRENO_METRIC_DEFAULT, or the Metrics name (the config's) */
    char *name;         /* "mysql/<cluster>" or "mysql/<cluster>/<metric>" */
    const char *query;  /* the config's */
    double threshold;
    int64_t cache_millis;
    double ignore_hosts_threshold;
    struct metric_live *live;

    bool has_value;
    bool ok;
    double value;
    char err[256];
    char host[HOSTPORT_TEXT_SIZE]; /* whose value or error it is; "" when no one host's */
    uint64_t aggregated_at_ms;
    uint64_t last_healthy_at_ms;
    bool share_known;
    int64_t share_seconds;
    uint64_t share_until_ms;
};

struct cluster {
    const struct config_cluster *cfg;
    /* [0] is MetricQuery's metric, then the config's Metrics by name. */
    struct cluster_metric metrics[FRENO_METRICS_MAX];
    size_t nmetrics;
    struct host_probe **hosts;
    size_t nhosts;
    struct config_hostport *source; /* last list from the inventory, unfiltered */
    size_t nsource;
};

struct throttler {
    struct loop *loop;
    struct loop_gate connect_gate; /* the probes' connects: THROTTLER_MAX_CONNECTING */
    const struct config *cfg;
    throttler_clock_fn *clock;
    void *clock_arg;
    char *hostname;
    char *service_id;
    char *memcache_json;
    struct token_set *tokens; /* control tokens; NULL: none needed */
    struct cluster *clusters;
    size_t nclusters;
    bool is_leader;

    uv_timer_t *timers[THROTTLER_TIMERS]; /* collect, aggregate, self check, slow, sweep */
    throttler_aggregate_fn *on_aggregated;
    void *on_aggregated_arg;
    struct history *history; /* borrowed, may be NULL */
    uint64_t history_s;      /* the last second recorded there */

    struct app_throttle apps;
    struct skipped_hosts skipped;
    struct opset rules; /* key -> struct throttler_rule_entry (throttler_rules.c) */
    size_t rules_max;   /* MaxAppRules */
    struct recent_apps recent;
    struct check_counters *checks; /* per app, store, app and store */
    bool apps_evicting_logged;
    bool app_stores_evicting_logged;
    bool recent_evicting_logged;

    /* The next snapshot to publish: its parts hold one reference each, its
     * strings are the throttler's own. */
    struct snapshot next;
    bool dirty_apps; /* next.apps / next.hosts are rebuilt at the next publish */
    bool dirty_hosts;
    bool dirty_rules;
    bool dirty_metrics;
    bool dirty_recent;
    bool publish_pending;
};

/* ---- throttler.c ---- */

/* The wall clock now, in epoch milliseconds, from the clock the throttler
 * was given. Every time the throttler uses comes from here. */
uint64_t throttler_now_ms(const struct throttler *t);
/* The 5 s tick: drops expired app throttles, skipped hosts (whose hosts
 * return to the probed sets) and recent apps, and publishes what changed. */
void throttler_tick_sweep(struct throttler *t);

/* ---- throttler_rules.c ---- */

/* A per-app rule as the throttler keeps it: expiry first (opset's sweep). */
struct throttler_rule_entry {
    uint64_t expire_at_ms; /* 0: never */
    struct app_rule rule;
};

void throttler_rules_init(struct throttler *t);
void throttler_rules_deinit(struct throttler *t);
/* Drops expired rules; true when any went. */
bool throttler_rules_sweep(struct throttler *t, uint64_t now_ms);

/* ---- throttler_hosts.c ---- */

/* Sets up cluster @c's metrics from @cfg, and its probed set from its static
 * hosts, if it has them. */
void throttler_cluster_init(struct throttler *t, struct cluster *c,
                            const struct config_cluster *cfg, uint64_t now_ms);
/* Stops every probe of @c and frees its host lists, names and metrics. */
void throttler_cluster_deinit(struct cluster *c);
/* Sets @c's source list to @hosts (copied) / rebuilds @c's probed set from
 * its source list (IgnoreHosts changed), keeping probes of hosts that
 * remain. */
void throttler_cluster_set_source(struct throttler *t, struct cluster *c,
                                  const struct config_hostport *hosts, size_t n, uint64_t now_ms);
void throttler_cluster_apply_hosts(struct throttler *t, struct cluster *c, uint64_t now_ms);
/* Rebuilds every cluster's probed set from its source list (after the
 * skipped hosts changed), keeping probes of hosts that remain. */
void throttler_apply_all_hosts(struct throttler *t, uint64_t now_ms);

/* ---- throttler_checks.c ---- */

/* Starts a probe of every host whose previous probe finished. */
void throttler_start_probes(struct throttler *t, uint64_t now_ms);
/* Counts the check records HTTP threads queued and records their apps. */
void throttler_take_check_records(struct throttler *t);

/* The 50 ms tick: throttler_start_probes() on the leader. */
void throttler_tick_collect(struct throttler *t);
/* Takes the check records of the HTTP threads, aggregates every cluster
 * (leader), forgets expired ShareDomain reports and publishes what changed. */
void throttler_tick_aggregate(struct throttler *t);
/* Checks every cluster with an aggregate as apps freno and
 * freno-share-domain (leader). */
void throttler_tick_self_check(struct throttler *t);

/* ---- throttler_publish.c ---- */

/* The operator state changed: what the snapshot shows of it is rebuilt
 * once, at the next publish, however many changes came before (a raft log
 * replay applies hundreds). */
void throttler_mark_apps(struct throttler *t);
void throttler_mark_hosts(struct throttler *t);
void throttler_mark_rules(struct throttler *t);
/* Rebuild a part now from the current state (and mark a publish pending). */
void throttler_rebuild_metrics(struct throttler *t);
void throttler_rebuild_recents(struct throttler *t);
void throttler_rebuild_text(struct throttler *t, uint64_t now_ms);
/* Builds every part and publishes the first snapshot. */
void throttler_publish_first(struct throttler *t, uint64_t now_ms);
/* Publishes a snapshot built at @now_ms, rebuilding the marked parts. */
void throttler_publish_at(struct throttler *t, uint64_t now_ms);
/* The 1 s tick: takes the check records, rebuilds the recent apps listing
 * and the /debug/vars and /metrics renderings, and publishes. */
void throttler_tick_slow(struct throttler *t);
/* The /config/memcache body for @cfg (caller frees). */
char *throttler_memcache_json(const struct config *cfg);
/* ControlToken (named TOKEN_DEFAULT_NAME) and ControlTokens of @cfg, or NULL
 * when control requests need no token. */
struct token_set *throttler_tokens_of(const struct config *cfg);
