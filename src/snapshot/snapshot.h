/* SPDX-License-Identifier: MIT */
/* The immutable state HTTP threads answer from. The loop builds a new
 * snapshot whenever something visible changes and publishes it with one
 * pointer swap; readers take no lock and no reference (RCU, liburcu-bp), so
 * the check path never waits for the loop or for another reader.
 * A snapshot owns copies of everything it shows. */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "snapshot/app_rule.h"

/* Live per-metric state written by HTTP threads: the low-priority mark.
 * Reference counted so a snapshot may outlive the loop's own reference. */
struct audit_record;
struct token_set;

struct metric_live {
    _Atomic uint64_t normal_throttled_at_ms; /* last 429 of a normal app */
    _Atomic int refs;
};

struct metric_live *metric_live_new(void);
struct metric_live *metric_live_ref(struct metric_live *m);
void metric_live_unref(struct metric_live *m);

/* One metric of one cluster: the one its MetricQuery measures, or one of its
 * Metrics (docs/config.md#metrics). Rebuilt whenever an aggregate changes. */
struct snap_metric {
    char *name; /* "mysql/<cluster>", or "mysql/<cluster>/<metric>" for one of its Metrics */
    const char *metric; /* FRENO_METRIC_DEFAULT (static), or the Metrics name (points into name) */
    double threshold;
    char threshold_json[32]; /* threshold as the check body prints it */
    char value_json[32];     /* value likewise, so checks do not format floats */
    bool has_value;          /* an unexpired aggregate exists */
    bool ok;
    double value;
    char *err;  /* when has_value && !ok */
    char *host; /* "host:port" whose value or error the aggregate is; NULL when no one host's */
    /* Retry-After of a refusal this metric decides: its CacheMillis in
     * whole seconds rounded up, at least 1 (docs/api.md#retry-after). */
    unsigned retry_after_s;
    uint64_t last_healthy_at_ms; /* 0: never healthy */
    bool share_known;            /* a ShareDomain peer reported this metric */
    int64_t share_seconds_since_healthy;
    struct metric_live *live; /* one reference held */
};

/* A cluster and its metrics. */
struct snap_cluster {
    char *name;
    /* [0] is MetricQuery's metric, then the Metrics by name; 1 to
     * FRENO_METRICS_MAX of them. */
    struct snap_metric *metrics;
    size_t nmetrics;
};

/* One host's last probe result of one metric. */
struct snap_probe {
    char *host;     /* "host:port" */
    uint64_t at_ms; /* when the result came; 0: none yet */
    bool ok;
    double value;          /* when ok */
    char *err;             /* when at_ms != 0 && !ok */
    bool http_404;         /* left out of aggregation by its HTTP check */
    uint64_t probe_errors; /* failed probes since the host joined the probed set */
};

/* Every probed host of one metric. */
struct snap_probe_set {
    char *metric; /* the metric's name, as struct snap_metric.name */
    struct snap_probe *v;
    size_t len;
};

struct snap_app {
    char *key;
    uint64_t expire_at_ms; /* 0: never */
    double ratio;
};

struct snap_host {
    char *host;
    uint64_t expire_at_ms;
};

struct snap_recent {
    char *key_json; /* "app/client" as a JSON string literal (quotes included) */
    uint64_t checked_at_ms;
};

struct snap_service {
    char *domain;
    char *service_id;
};

struct snap_leader {
    bool is_leader;
    /* When not 0, is_leader holds only while clock_boot_ms() is below this:
     * the lease a backend election granted. Readers check it themselves, so
     * a loop that is late (or a process that was paused) cannot make a
     * stale snapshot claim leadership past the lease. */
    uint64_t lease_until_boot_ms;
    bool healthy;
    char *leader_id; /* "" when unknown */
    char *state;     /* "Leader", "Healthy", "Unhealthy", or raft's state */
    char *service_id;
    char *domain;
    char *share_domain;
    struct snap_service *share_services; /* other leaders in the ShareDomain */
    size_t share_services_len;
    struct snap_service *domain_services; /* healthy services of our Domain */
    size_t domain_services_len;
};

/* Reference-counted parts, rebuilt independently so a snapshot built every
 * 25 ms does not copy everything every time. Each begins with this header:
 * its count and the function that frees what the part owns. */
struct snap_part {
    _Atomic int refs;
    void (*free_contents)(struct snap_part *p);
};
struct snap_clusters {
    struct snap_part part;
    struct snap_cluster *v; /* sorted by name */
    size_t len;
};
/* The hosts behind each metric, rebuilt once a second (for pages that show
 * them and for /metrics), so that a value changing every probe does not copy
 * every host every 25 ms. */
struct snap_probes {
    struct snap_part part;
    struct snap_probe_set *v; /* sorted by metric name */
    size_t len;
};
struct snap_apps {
    struct snap_part part;
    struct snap_app *v; /* sorted by key */
    size_t len;
    char *keys; /* NULL, or the one block every key points into */
};
struct snap_hosts {
    struct snap_part part;
    struct snap_host *v; /* sorted by host */
    size_t len;
    char *names; /* NULL, or the one block every host points into */
};
struct snap_recents {
    struct snap_part part;
    struct snap_recent *v; /* sorted by app/client */
    size_t len;
    size_t key_json_bytes; /* sum of the key_json lengths, to size a rendering */
};
/* Renderings served as they are: an HTTP thread takes a reference inside its
 * read-side section and hands the bytes to the server, which drops the
 * reference once they are sent (no copy per request). */
struct snap_text {
    struct snap_part part;
    char *debug_vars_json; /* /debug/vars */
    size_t debug_vars_len;
    char *prometheus; /* /metrics */
    size_t prometheus_len;
};
struct snap_leaders {
    struct snap_part part;
    struct snap_leader l;
};
/* Per-app rules (docs/semantics.md#app-rules), expired ones included until
 * the loop sweeps them: readers test the expiry. */
struct snap_rule {
    char *key;             /* "app" or "app/store"; first, as in snap_app */
    uint64_t expire_at_ms; /* 0: never */
    struct app_rule rule;
};
struct snap_rules {
    struct snap_part part;
    struct snap_rule *v; /* sorted by key */
    size_t len;
    char *keys; /* NULL, or the one block every key points into */
};

/* The audit trail GET /audit-log shows, newest first (core/audit.h). */
struct snap_audit {
    struct snap_part part;
    struct audit_record *v;
    size_t len;
};

struct snapshot {
    uint64_t built_at_ms;
    const char *hostname;      /* process lifetime */
    const char *memcache_json; /* process lifetime: /config/memcache body */
    /* May be NULL. Points into the config in force when the snapshot was
     * built: a reload frees the one it replaces through snapshot_defer(). */
    const char *control_token;
    /* ControlToken (as "default") and ControlTokens; NULL when control
     * requests need no token. A reload replaces the set and frees the old
     * one through snapshot_defer(). */
    const struct token_set *tokens;
    /* Checks stop vouching for metrics once the loop's heartbeat is older
     * than this (CheckStaleAfterMillis); 0: no such test. */
    uint64_t stale_after_ms;
    /* CheckDetails: every check answer explains itself (process lifetime). */
    bool check_details;
    struct snap_clusters *clusters;
    struct snap_probes *probes;
    struct snap_apps *apps;
    struct snap_hosts *hosts;
    struct snap_recents *recents;
    struct snap_text *text;
    struct snap_leaders *leader;
    struct snap_rules *rules;
    struct snap_audit *audit;
};

/* Part constructors return one reference; *_unref drops one and frees the
 * part at zero (NULL is fine). The constructors take ownership of @v arrays
 * (and their strings). */
struct snap_clusters *snap_clusters_new(struct snap_cluster *v, size_t len);
void snap_clusters_unref(struct snap_clusters *p);
struct snap_probes *snap_probes_new(struct snap_probe_set *v, size_t len);
void snap_probes_unref(struct snap_probes *p);
/* Apps and hosts: with the _packed constructors every string of @v lies
 * inside @block (owned too), so that a part of 100,000 entries costs two
 * allocations, not 100,002. */
struct snap_apps *snap_apps_new(struct snap_app *v, size_t len);
struct snap_hosts *snap_hosts_new(struct snap_host *v, size_t len);
struct snap_apps *snap_apps_new_packed(struct snap_app *v, size_t len, char *block);
struct snap_hosts *snap_hosts_new_packed(struct snap_host *v, size_t len, char *block);
void snap_apps_unref(struct snap_apps *p);
void snap_hosts_unref(struct snap_hosts *p);
struct snap_recents *snap_recents_new(struct snap_recent *v, size_t len);
void snap_recents_unref(struct snap_recents *p);
struct snap_text *snap_text_new(char *debug_vars_json, size_t debug_vars_len, char *prometheus,
                                size_t prometheus_len);
/* Takes one more reference on @p (any thread, e.g. inside a read-side
 * section, to keep the text past snapshot_release()); returns @p. */
struct snap_text *snap_text_ref(struct snap_text *p);
void snap_text_unref(struct snap_text *p);
/* Takes ownership of the strings and arrays in @l. */
struct snap_leaders *snap_leaders_new(const struct snap_leader *l);
void snap_leaders_unref(struct snap_leaders *p);
/* Takes ownership of @v and @block (every key of @v lies in it; NULL: each
 * key is its own allocation). */
struct snap_rules *snap_rules_new_packed(struct snap_rule *v, size_t len, char *block);
void snap_rules_unref(struct snap_rules *p);
/* Takes ownership of @v. */
struct snap_audit *snap_audit_new(struct audit_record *v, size_t len);
void snap_audit_unref(struct snap_audit *p);
/* Drops the reference @s holds on each of its parts (NULL ones are fine),
 * as when @s itself goes; its strings are not touched. */
void snapshot_parts_unref(struct snapshot *s);

/* Sets up RCU; main thread, before any other thread starts. */
void snapshot_init(void);
/* Frees the current snapshot and waits for deferred frees. Main thread,
 * after every reader thread stopped. */
void snapshot_shutdown(void);

/* Publishes a new snapshot whose parts are the given ones; each pointer gets
 * one new reference (the caller keeps its own). Loop thread. */
void snapshot_publish(const struct snapshot *tmpl);

/* Calls @fn(@arg) once every reader that could see a snapshot published
 * before this call has released it, on liburcu's call_rcu thread (at the
 * latest in snapshot_shutdown()): for what such a snapshot may point into,
 * as the strings of a config a reload replaced. Loop thread. */
void snapshot_defer(void (*fn)(void *arg), void *arg);

/* Read side: the returned snapshot (never NULL after the first publish, NULL
 * before) stays valid until snapshot_release(). Do not block in between, and
 * copy out everything the answer needs before the release: any pointer into
 * the snapshot (its strings, a check_result's) dangles after it. Any thread. */
const struct snapshot *snapshot_acquire(void);
void snapshot_release(const struct snapshot *s);

/* Lookups (binary search). NULL when absent. */
const struct snap_cluster *snapshot_find_cluster(const struct snapshot *s, const char *name);
const struct snap_app *snapshot_find_app(const struct snapshot *s, const char *key);
/* The rule of @key, expired or not, or NULL. */
const struct snap_rule *snapshot_find_rule(const struct snapshot *s, const char *key);
const struct snap_probe_set *snapshot_find_probes(const struct snapshot *s, const char *metric);
/* The metric of @c named @metric (FRENO_METRIC_DEFAULT or a Metrics name),
 * or NULL. */
const struct snap_metric *snap_cluster_metric(const struct snap_cluster *c, const char *metric);
