/* SPDX-License-Identifier: MIT */
/* The throttler: per-cluster host sets and probes (one per host and metric),
 * aggregation of each metric every 25 ms, self checks every 100 ms, operator
 * state (app throttles, skipped hosts), recent apps and named counters, and
 * the snapshot it publishes for HTTP threads. Only probes while this node
 * leads. Loop thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct audit_ring;
struct loop;
struct config;
struct config_hostport;
struct loop_cmd;
struct snap_leader;
struct throttler;
struct history;

/* A wall clock: epoch milliseconds now. */
typedef uint64_t throttler_clock_fn(void *arg);

struct throttler_params {
    struct loop *loop;
    const struct config *cfg; /* borrowed; must outlive the throttler */
    const char *hostname;     /* copied */
    const char *service_id;   /* copied */
    /* The one clock the throttler reads, for every expiry, aggregation,
     * self check and snapshot it makes; NULL: clock_wall_ms(). Probes stamp
     * their results with the loop's clock (loop_now_ms()), so give a clock
     * other than the wall clock only where that one is driven too. */
    throttler_clock_fn *clock;
    void *clock_arg;
    /* Where each metric's aggregate is recorded once a second (borrowed; must
     * outlive the throttler); NULL: nowhere. */
    struct history *history;
};

/* Creates the throttler described by @p. Publishes a first snapshot. Loop
 * thread. */
struct throttler *throttler_new(const struct throttler_params *p);
void throttler_free(struct throttler *t);

/* A reload: switches to @cfg (borrowed as throttler_params.cfg is; the
 * previous config is no longer read once this returns, and the snapshot it
 * publishes no longer points into it). Clusters are matched by name: a new
 * one starts, a removed one stops and leaves every listing; a kept one keeps
 * its hosts, probes (connections), aggregates and low-priority marks and
 * takes the new thresholds, CacheMillis, IgnoreHosts* and static hosts,
 * unless its login (User, Password, Collation) or a metric's name or query
 * changed: then its hosts are probed anew. Operator state stays. */
void throttler_reconfigure(struct throttler *t, const struct config *cfg);

/* Starts (leader) or stops (follower) probing. Stopping drops every aggregate
 * at once, so a deposed leader answers checks 404 immediately. */
void throttler_set_leader(struct throttler *t, bool is_leader);
bool throttler_is_leader(const struct throttler *t);

/* Replaces the leader/consensus part shown by /leader-check and the
 * consensus endpoints.
 * Takes ownership of the strings and arrays in @l. */
void throttler_set_leader_status(struct throttler *t, const struct snap_leader *l);

/* Replaces the audit trail GET /audit-log shows with @ring's records and
 * publishes. */
void throttler_set_audit(struct throttler *t, const struct audit_ring *ring);

/* Sets the host list of cluster @cluster_idx (from an inventory source).
 * IgnoreHosts and skipped hosts are filtered here; probes of hosts that stay
 * are kept, with their connection and last result. */
void throttler_set_cluster_hosts(struct throttler *t, size_t cluster_idx,
                                 const struct config_hostport *hosts, size_t n);

/* Calls @fn for each host cluster @cluster_idx probes now (IgnoreHosts and
 * skipped hosts already left out). @host is borrowed for the call. */
void throttler_each_cluster_host(struct throttler *t, size_t cluster_idx,
                                 void (*fn)(const char *host, uint16_t port, void *arg), void *arg);

/* Records the HTTP check answer for every probed host of cluster
 * @cluster_idx named @host: with @is_404 the host is left out of the
 * cluster's aggregation until a later answer says otherwise or it leaves and
 * rejoins the inventory. Unknown hosts are ignored. */
void throttler_set_host_http_404(struct throttler *t, size_t cluster_idx, const char *host,
                                 bool is_404);

/* Called on the leader after each aggregation, once per metric of each
 * cluster, with the metric name ("mysql/<cluster>", or
 * "mysql/<cluster>/<metric>" for one of its Metrics) and the aggregate:
 * has_value false means none (not collected yet or expired); otherwise ok
 * says value or error. */
typedef void throttler_aggregate_fn(const char *metric, bool has_value, bool ok, double value,
                                    uint64_t now_ms, void *arg);
/* Installs @fn (NULL removes it). */
void throttler_set_aggregate_hook(struct throttler *t, throttler_aggregate_fn *fn, void *arg);

/* Operator state, applied locally (after any backend write succeeded).
 * Each returns 0, or -EINVAL with @err set and nothing changed. */
int throttler_throttle_app(struct throttler *t, const char *key, bool has_ttl, int64_t ttl_min,
                           bool has_ratio, double ratio, struct err *err);
void throttler_unthrottle_app(struct throttler *t, const char *key);
int throttler_skip_host(struct throttler *t, const char *host, bool has_ttl, int64_t ttl_min,
                        struct err *err);
void throttler_recover_host(struct throttler *t, const char *host);
/* Absolute-time variants for state loaded from a backend or a raft log. */
void throttler_put_app(struct throttler *t, const char *key, uint64_t expire_at_ms, double ratio);
void throttler_put_skipped_host(struct throttler *t, const char *host, uint64_t expire_at_ms);
/* Removals that, like the puts, leave publishing to the caller or the next
 * tick (a raft log replay applies thousands). */
void throttler_remove_app(struct throttler *t, const char *key);
void throttler_remove_skipped_host(struct throttler *t, const char *host);
/* Drops every app throttle except the built-in one (before a full reload). */
void throttler_clear_apps(struct throttler *t);
/* Drops every skipped host (before a full reload, e.g. a raft snapshot). */
void throttler_clear_skipped_hosts(struct throttler *t);

/* Compute, without changing anything, what throttler_throttle_app() and
 * throttler_skip_host() would store at @now_ms: the absolute expiry (0: never
 * for apps) and the ratio. Same rules and errors (the caps included); for
 * replicating a command as absolute values. */
int throttler_plan_throttle_app(struct throttler *t, const char *key, bool has_ttl, int64_t ttl_min,
                                bool has_ratio, double ratio, uint64_t now_ms,
                                uint64_t *expire_at_ms, double *ratio_out, struct err *err);
int throttler_plan_skip_host(struct throttler *t, const char *host, bool has_ttl, int64_t ttl_min,
                             uint64_t now_ms, uint64_t *expire_at_ms, struct err *err);
/* Whether @key / @host has no entry yet (so storing it takes a slot under
 * MaxThrottledApps / MaxSkippedHosts). */
bool throttler_app_is_new(struct throttler *t, const char *key);
bool throttler_host_is_new(struct throttler *t, const char *host);
/* Checks, before a change is stored elsewhere (backend, raft log), that
 * @key / @host has an entry or there is room for it and @pending other new
 * entries on their way. Returns 0, or -ENOSPC with @err naming the limit. */
int throttler_room_for_app(struct throttler *t, const char *key, size_t pending, struct err *err);
int throttler_room_for_host(struct throttler *t, const char *host, size_t pending, struct err *err);
/* Publishes a snapshot now if the put/clear functions above left changes
 * unpublished (they leave publishing to the next tick otherwise). */
void throttler_publish_pending(struct throttler *t);

/* A whole set of operator state as loaded from a backend. */
struct throttler_app {
    const char *key;
    uint64_t expire_at_ms; /* 0: never */
    double ratio;
};
struct throttler_host {
    const char *host;
    uint64_t expire_at_ms;
};
/* Replaces every app throttle (the built-in one stays unless @v has it) /
 * every skipped host with @v in one step, and publishes at once, so readers
 * never see a half-loaded set. */
void throttler_replace_apps(struct throttler *t, const struct throttler_app *v, size_t n);
void throttler_replace_skipped_hosts(struct throttler *t, const struct throttler_host *v, size_t n);
/* Publishes pending changes now (after throttler_put_app and friends), so a
 * GET right after a command sees them. */
void throttler_publish(struct throttler *t);

/* Iterates current app throttles / skipped hosts (for snapshots of state),
 * in key order. @fn is called for each entry not swept yet; it must not
 * change the operator state. */
void throttler_each_app(struct throttler *t,
                        void (*fn)(const char *key, uint64_t expire_at_ms, double ratio, void *arg),
                        void *arg);
void throttler_each_skipped_host(struct throttler *t,
                                 void (*fn)(const char *host, uint64_t expire_at_ms, void *arg),
                                 void *arg);

/* ShareDomain health reported by peers: @metric -> worst seconds since
 * healthy, valid until @now_ms + 5 s. */
void throttler_set_share_health(struct throttler *t, const char *metric, int64_t seconds,
                                uint64_t now_ms);

/* Per-app rules (docs/semantics.md#app-rules), at most MaxAppRules. A set
 * replaces the whole rule of @key; @text is its canonical text. */
struct app_rule;
/* Computes, without changing anything, what setting the rule @text on @key
 * with an optional TTL (absent or 0: never expires) stores at @now_ms: the
 * parsed rule and its absolute expiry. Returns 0, -EINVAL (bad text, key or
 * TTL) or -ENOSPC (a new key past MaxAppRules, counting @pending others on
 * their way), with @err set. */
int throttler_plan_rule(struct throttler *t, const char *key, const char *text, bool has_ttl,
                        int64_t ttl_min, uint64_t now_ms, size_t pending, struct app_rule *rule,
                        uint64_t *expire_at_ms, struct err *err);
/* Whether @key has no rule yet (so storing one takes a slot). */
bool throttler_rule_is_new(struct throttler *t, const char *key);
/* Stores / removes a rule as given (from a backend, a raft log, or a plan);
 * publishing is left to the caller or the next tick, as for apps. */
void throttler_put_rule(struct throttler *t, const char *key, uint64_t expire_at_ms,
                        const struct app_rule *rule);
void throttler_remove_rule(struct throttler *t, const char *key);
/* One rule of a whole set loaded from a backend or a raft snapshot. */
struct throttler_rule {
    const char *key;
    uint64_t expire_at_ms;
    const struct app_rule *rule;
};
/* Replaces every rule with @v in one step and publishes when it changed. */
void throttler_replace_rules(struct throttler *t, const struct throttler_rule *v, size_t n);
/* Iterates current rules in key order; @fn must not change them. */
void throttler_each_rule(struct throttler *t,
                         void (*fn)(const char *key, uint64_t expire_at_ms,
                                    const struct app_rule *rule, void *arg),
                         void *arg);

/* Applies an operator command locally and finishes it (200 or 500). */
void throttler_apply_cmd(struct throttler *t, struct loop_cmd *cmd);
