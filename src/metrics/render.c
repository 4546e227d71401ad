/* SPDX-License-Identifier: MIT */
/* /metrics and /debug/vars renderings. Prometheus: a fixed list of families
 * (the README's table), per-app, per-store and per-host figures as labels.
 * /debug/vars: the original's expvar names; names built from client strings
 * never replace a fixed key, and all of them are printable UTF-8, so jansson
 * accepts every key. Loop thread. */
#include "metrics/render.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/text.h"
#include "core/xalloc.h"
#include "metrics/check_counters.h"
#include "metrics/expo.h"
#include "metrics/metrics.h"

/* Longest throttle key shown (the backend stores 128 bytes); longer ones are
 * cut on a character boundary. */
#define THROTTLE_KEY_MAX 255

/* ---- shared ---- */

struct throttle_row {
    char key[THROTTLE_KEY_MAX + 1]; /* printable */
    double ratio;
};

static int cmp_throttle_row(const void *a, const void *b)
{
    return strcmp(((const struct throttle_row *)a)->key, ((const struct throttle_row *)b)->key);
}

/* The active throttles with printable keys, sorted, one row per key (two raw
 * keys that print alike keep the larger ratio). Caller frees. */
static struct throttle_row *throttle_rows(const struct metrics_state *st, size_t *n)
{
    struct throttle_row *rows = xcalloc(st->nthrottled ? st->nthrottled : 1, sizeof(*rows));
    for (size_t i = 0; i < st->nthrottled; i++) {
        text_printable(rows[i].key, sizeof(rows[i].key), st->throttled[i].key);
        rows[i].ratio = st->throttled[i].ratio;
    }
    qsort(rows, st->nthrottled, sizeof(*rows), cmp_throttle_row);
    size_t o = 0;
    for (size_t i = 0; i < st->nthrottled; i++) {
        if (o > 0 && strcmp(rows[o - 1].key, rows[i].key) == 0) {
            if (rows[i].ratio > rows[o - 1].ratio)
                rows[o - 1].ratio = rows[i].ratio;
            continue;
        }
        rows[o++] = rows[i];
    }
    *n = o;
    return rows;
}

/* ---- Prometheus ---- */

/* A family of one sample without labels. */
static void prom_single(struct expo *e, const char *name, enum expo_type type, const char *help,
                        uint64_t value)
{
    expo_family(e, name, type, help);
    expo_sample_u64(e, NULL, NULL, 0, value);
}

static uint64_t pick(const struct check_counts *c, int which)
{
    return which == 0 ? c->total : which == 1 ? c->error : c->internal_error;
}

/* The process counters that are one sample each. */
static const struct {
    const char *name;
    const char *help;
    enum metrics_counter c;
} process_counters[] = {
        {"freno_checks_total",
         "Checks answered for store type mysql, every app and store (check.any.total).",
         METRICS_CHECK_ANY_TOTAL},
        {"freno_check_errors_total",
         "Checks answered with a status other than 200 (check.any.error).",
         METRICS_CHECK_ANY_ERROR},
        {"freno_check_internal_errors_total", "Checks answered 500 (check.any.internal-error).",
         METRICS_CHECK_ANY_INTERNAL_ERROR},
        {"freno_check_events_dropped_total",
         "Checks left out of the per-app counters and recent apps because a queue to the loop was full.",
         METRICS_CHECK_EVENTS_DROPPED},
        {"freno_probes_total", "Probes of MySQL hosts completed.", METRICS_PROBES_TOTAL},
        {"freno_probe_errors_total", "Probes of MySQL hosts that failed.", METRICS_PROBES_ERROR},
};

/* HTTP checks of hosts, by result. */
static const struct {
    const char *result;
    enum metrics_counter c;
} http_checks[] = {{"200", METRICS_HTTPCHECK_200},
                   {"404", METRICS_HTTPCHECK_404},
                   {"other", METRICS_HTTPCHECK_OTHER},
                   {"error", METRICS_HTTPCHECK_ERROR},
                   {"skipped", METRICS_HTTPCHECK_SKIP}};

static void prom_process(struct expo *e)
{
    for (size_t i = 0; i < sizeof(process_counters) / sizeof(process_counters[0]); i++)
        prom_single(e, process_counters[i].name, EXPO_COUNTER, process_counters[i].help,
                    metrics_get(process_counters[i].c));
    expo_family(e, "freno_probe_duration_seconds", EXPO_SUMMARY, "Time probes took.");
    expo_sample(e, "_sum", NULL, 0, (double)metrics_get(METRICS_PROBES_LATENCY_SUM_US) / 1e6);
    expo_sample_u64(e, "_count", NULL, 0, metrics_get(METRICS_PROBES_LATENCY_COUNT));
    expo_family(e, "freno_probe_duration_max_seconds", EXPO_GAUGE,
                "Longest time a probe took since start.");
    expo_sample(e, NULL, NULL, 0, (double)metrics_get(METRICS_PROBES_LATENCY_MAX_US) / 1e6);
    expo_family(
            e, "freno_http_checks_total", EXPO_COUNTER,
            "HTTP checks of hosts by result: 200, 404, other (another status), error (no answer), skipped (host of a cluster without HTTP checks).");
    for (size_t i = 0; i < sizeof(http_checks) / sizeof(http_checks[0]); i++) {
        struct expo_label l[] = {{"result", http_checks[i].result}};
        expo_sample_u64(e, NULL, l, 1, metrics_get(http_checks[i].c));
    }
}

/* One figure of a store or a host; a store or host without it has no
 * sample. */
struct figure {
    bool has;
    double value;
};

/* The per-store gauges, in the order of store_gauges below. */
#define STORE_GAUGES 5
static const struct {
    const char *name;
    const char *help;
} store_gauges[STORE_GAUGES] = {
        {"freno_store_threshold", "ThrottleThreshold of each store (MySQL cluster)."},
        {"freno_store_value",
         "Aggregated value of each store (its worst host), while it is healthy."},
        {"freno_store_healthy",
         "1 when the store has an aggregated value that is not an error, else 0."},
        {"freno_store_seconds_since_healthy",
         "Seconds since the store last passed its self check, for stores that ever did."},
        {"freno_store_hosts", "Hosts probed for each store."},
};

static void store_figures(const struct metrics_store *s, struct figure f[STORE_GAUGES])
{
    bool healthy = s->has_value && s->ok;
    f[0] = (struct figure){true, s->threshold};
    f[1] = (struct figure){healthy, s->value};
    f[2] = (struct figure){true, healthy ? 1 : 0};
    f[3] = (struct figure){s->ever_healthy, (double)s->seconds_since_healthy};
    f[4] = (struct figure){true, (double)s->nhosts};
}

/* The per-store check counters: total, error, internal error. */
static const struct {
    const char *name;
    const char *help;
} store_counters[3] = {
        {"freno_store_checks_total", "Checks answered for each store."},
        {"freno_store_check_errors_total",
         "Checks answered for each store with a status other than 200."},
        {"freno_store_check_internal_errors_total", "Checks answered 500 for each store."},
};

static void prom_stores(struct expo *e, const struct metrics_state *st)
{
    for (int g = 0; g < STORE_GAUGES; g++) {
        expo_family(e, store_gauges[g].name, EXPO_GAUGE, store_gauges[g].help);
        for (size_t i = 0; i < st->nstores; i++) {
            struct figure f[STORE_GAUGES];
            store_figures(&st->stores[i], f);
            struct expo_label l[] = {{"store", st->stores[i].name}};
            if (f[g].has)
                expo_sample(e, NULL, l, 1, f[g].value);
        }
    }
    for (int w = 0; w < 3; w++) {
        expo_family(e, store_counters[w].name, EXPO_COUNTER, store_counters[w].help);
        for (size_t i = 0; i < st->nstores; i++) {
            const struct check_counts *c =
                    st->checks ? check_counters_store(st->checks, st->stores[i].name) : NULL;
            struct expo_label l[] = {{"store", st->stores[i].name}};
            expo_sample_u64(e, NULL, l, 1, c ? pick(c, w) : 0);
        }
    }
}

/* The per-host families, in the order of host_figures(). */
#define HOST_FAMILIES 3
static const struct {
    const char *name;
    enum expo_type type;
    const char *help;
} host_families[HOST_FAMILIES] = {
        {"freno_host_up", EXPO_GAUGE,
         "1 when the last probe of the host succeeded, else 0 (failed or none yet)."},
        {"freno_host_value", EXPO_GAUGE,
         "Value of the last successful probe of the host, while its last probe succeeded."},
        {"freno_host_probe_errors_total", EXPO_COUNTER,
         "Failed probes of the host since it joined the store's probed set."},
};

static void host_figures(const struct metrics_host *h, struct figure f[HOST_FAMILIES])
{
    f[0] = (struct figure){true, h->ok ? 1 : 0};
    f[1] = (struct figure){h->ok, h->value};
    f[2] = (struct figure){true, (double)h->probe_errors};
}

static void prom_hosts(struct expo *e, const struct metrics_state *st)
{
    for (int g = 0; g < HOST_FAMILIES; g++) {
        expo_family(e, host_families[g].name, host_families[g].type, host_families[g].help);
        for (size_t i = 0; i < st->nstores; i++) {
            const struct metrics_store *s = &st->stores[i];
            for (size_t j = 0; j < s->nhosts; j++) {
                struct figure f[HOST_FAMILIES];
                host_figures(&s->hosts[j], f);
                struct expo_label l[] = {{"store", s->name}, {"host", s->hosts[j].key}};
                if (f[g].has)
                    expo_sample(e, NULL, l, 2, f[g].value);
            }
        }
    }
}

/* The figures of stores' Metrics, in families of their own so that the
 * store families keep meaning MetricQuery's metric: per metric the gauges
 * of store_gauges but the host count, per metric and host the families of
 * host_families. */
#define METRIC_GAUGES 4
static const struct {
    const char *name;
    const char *help;
} metric_gauges[METRIC_GAUGES] = {
        {"freno_store_metric_threshold", "Threshold of each of a store's Metrics."},
        {"freno_store_metric_value",
         "Aggregated value of each of a store's Metrics (its worst host), while it is healthy."},
        {"freno_store_metric_healthy",
         "1 when the metric has an aggregated value that is not an error, else 0."},
        {"freno_store_metric_seconds_since_healthy",
         "Seconds since the metric was last within its threshold in a self check, for metrics that ever were."},
};

static const struct {
    const char *name;
    enum expo_type type;
    const char *help;
} host_metric_families[HOST_FAMILIES] = {
        {"freno_host_metric_up", EXPO_GAUGE,
         "1 when the last probe of the host for the metric succeeded, else 0."},
        {"freno_host_metric_value", EXPO_GAUGE,
         "Value of the last successful probe of the host for the metric, while it succeeded."},
        {"freno_host_metric_probe_errors_total", EXPO_COUNTER,
         "Failed probes of the host for the metric since it joined the store's probed set."},
};

static void metric_figures(const struct metrics_metric *m, struct figure f[METRIC_GAUGES])
{
    bool healthy = m->has_value && m->ok;
    f[0] = (struct figure){true, m->threshold};
    f[1] = (struct figure){healthy, m->value};
    f[2] = (struct figure){true, healthy ? 1 : 0};
    f[3] = (struct figure){m->ever_healthy, (double)m->seconds_since_healthy};
}

static void prom_store_metrics(struct expo *e, const struct metrics_state *st)
{
    for (int g = 0; g < METRIC_GAUGES; g++) {
        expo_family(e, metric_gauges[g].name, EXPO_GAUGE, metric_gauges[g].help);
        for (size_t i = 0; i < st->nstores; i++) {
            const struct metrics_store *s = &st->stores[i];
            for (size_t j = 0; j < s->nmetrics; j++) {
                struct figure f[METRIC_GAUGES];
                metric_figures(&s->metrics[j], f);
                struct expo_label l[] = {{"store", s->name}, {"metric", s->metrics[j].metric}};
                if (f[g].has)
                    expo_sample(e, NULL, l, 2, f[g].value);
            }
        }
    }
    for (int g = 0; g < HOST_FAMILIES; g++) {
        expo_family(e, host_metric_families[g].name, host_metric_families[g].type,
                    host_metric_families[g].help);
        for (size_t i = 0; i < st->nstores; i++) {
            const struct metrics_store *s = &st->stores[i];
            for (size_t j = 0; j < s->nmetrics; j++) {
                for (size_t k = 0; k < s->nhosts; k++) {
                    const struct metrics_host *h = &s->metrics[j].hosts[k];
                    struct figure f[HOST_FAMILIES];
                    host_figures(h, f);
                    struct expo_label l[] = {
                            {"store", s->name}, {"metric", s->metrics[j].metric}, {"host", h->key}};
                    if (f[g].has)
                        expo_sample(e, NULL, l, 3, f[g].value);
                }
            }
        }
    }
}

/* Check counters by app or by app and store: three families (total, error,
 * internal error), the samples of each from @each. */
struct count_families {
    const char *names[3];
    const char *helps[3];
    void (*each)(const struct check_counters *cc, check_counters_fn *fn, void *arg);
};

static const struct count_families app_counts = {
        {"freno_app_checks_total", "freno_app_check_errors_total",
         "freno_app_check_internal_errors_total"},
        {"Checks answered for each app, on stores that exist.",
         "Checks answered for each app with a status other than 200.",
         "Checks answered 500 for each app."},
        check_counters_each_app,
};

static const struct count_families app_store_counts = {
        {"freno_app_store_checks_total", "freno_app_store_check_errors_total",
         "freno_app_store_check_internal_errors_total"},
        {"Checks answered for each app and store.",
         "Checks answered for each app and store with a status other than 200.",
         "Checks answered 500 for each app and store."},
        check_counters_each_app_store,
};

struct prom_ctx {
    struct expo *e;
    int which; /* 0: total, 1: error, 2: internal error */
};

/* One sample labelled with the app, and the store when there is one. */
static void on_count(const char *app, const char *store, const struct check_counts *c, void *arg)
{
    struct prom_ctx *x = arg;
    struct expo_label l[] = {{"app", app}, {"store", store}};
    expo_sample_u64(x->e, NULL, l, store != NULL ? 2 : 1, pick(c, x->which));
}

static void prom_counts(struct expo *e, const struct metrics_state *st,
                        const struct count_families *f)
{
    struct prom_ctx x = {.e = e};
    for (x.which = 0; x.which < 3; x.which++) {
        expo_family(e, f->names[x.which], EXPO_COUNTER, f->helps[x.which]);
        if (st->checks != NULL)
            f->each(st->checks, on_count, &x);
    }
}

static void prom_apps(struct expo *e, const struct metrics_state *st)
{
    prom_counts(e, st, &app_counts);
    prom_counts(e, st, &app_store_counts);
    struct check_counters_stats cs = {0};
    if (st->checks != NULL)
        check_counters_get_stats(st->checks, &cs);
    prom_single(e, "freno_counted_apps", EXPO_GAUGE,
                "Apps with their own counters (at most MaxCountedApps).", cs.apps);
    prom_single(
            e, "freno_counted_apps_evicted_total", EXPO_COUNTER,
            "Apps whose counters were dropped, least recently counted first, to stay within MaxCountedApps.",
            cs.apps_evicted);
    prom_single(e, "freno_counted_app_stores", EXPO_GAUGE,
                "App and store pairs with their own counters (at most MaxCountedAppStores).",
                cs.app_stores);
    prom_single(
            e, "freno_counted_app_stores_evicted_total", EXPO_COUNTER,
            "App and store pairs whose counters were dropped to stay within MaxCountedAppStores.",
            cs.app_stores_evicted);
}

static void prom_operator(struct expo *e, const struct metrics_state *st)
{
    size_t n;
    struct throttle_row *rows = throttle_rows(st, &n);
    prom_single(e, "freno_throttled_apps", EXPO_GAUGE, "Apps throttled by an operator.",
                st->throttled_apps);
    expo_family(
            e, "freno_throttled_app_ratio", EXPO_GAUGE,
            "Ratio of checks denied to each throttled app; store is empty for a throttle on every store.");
    for (size_t i = 0; i < n; i++) {
        char *slash = strchr(rows[i].key, '/');
        if (slash != NULL)
            *slash = '\0';
        struct expo_label l[] = {{"app", rows[i].key}, {"store", slash ? slash + 1 : ""}};
        expo_sample(e, NULL, l, 2, rows[i].ratio);
    }
    free(rows);
    prom_single(e, "freno_skipped_hosts", EXPO_GAUGE, "Hosts skipped by an operator.",
                st->skipped_hosts);
    prom_single(e, "freno_recent_apps", EXPO_GAUGE,
                "App and client pairs listed by /recent-apps (at most MaxRecentApps).",
                st->recent_apps);
    prom_single(
            e, "freno_recent_apps_evicted_total", EXPO_COUNTER,
            "App and client pairs dropped from /recent-apps before their 24 hours, least recently seen first, to stay within MaxRecentApps.",
            st->recent_apps_evicted);
}

char *metrics_render_prometheus(const struct metrics_state *st, size_t *len)
{
    struct expo *e = expo_new();
    prom_process(e);
    prom_single(e, "freno_leader", EXPO_GAUGE, "1 when this node is the leader, else 0.",
                st->is_leader ? 1 : 0);
    prom_single(e, "freno_consensus_healthy", EXPO_GAUGE,
                "1 when the election (raft or the MySQL backend) is healthy, else 0.",
                st->is_healthy ? 1 : 0);
    prom_stores(e, st);
    prom_hosts(e, st);
    prom_store_metrics(e, st);
    prom_apps(e, st);
    prom_operator(e, st);
    char *text = expo_take(e, len);
    expo_free(e);
    return text;
}

/* ---- /debug/vars ---- */

/* Sets @key unless it exists: a name built from client strings never
 * replaces a fixed one or an earlier one. */
static void set_new(json_t *vars, const char *key, json_t *value)
{
    if (json_object_get(vars, key) != NULL)
        json_decref(value);
    else
        json_object_set_new(vars, key, value);
}

struct vars_ctx {
    json_t *vars;
    int kind; /* 0: app, 1: store, 2: app and store */
};

static void on_vars(const char *app, const char *store, const struct check_counts *c, void *arg)
{
    struct vars_ctx *x = arg;
    static const char *const suffixes[3] = {"total", "error", "internal-error"};
    for (int w = 0; w < 3; w++) {
        uint64_t v = pick(c, w);
        if (w > 0 && v == 0)
            continue; /* as the original: an error counter exists once counted */
        char *key = x->kind == 0   ? xasprintf("check.%s.%s", app, suffixes[w])
                    : x->kind == 1 ? xasprintf("check.any.mysql.%s.%s", store, suffixes[w])
                                   : xasprintf("check.%s.mysql.%s.%s", app, store, suffixes[w]);
        set_new(x->vars, key, json_integer((json_int_t)v));
        free(key);
    }
}

char *metrics_render_debug_vars(const struct metrics_state *st, size_t *len)
{
    json_t *vars = json_object();
    for (int i = 0; i < METRICS_COUNTER_COUNT; i++) {
        const char *name = metrics_name(i);
        if (name != NULL)
            json_object_set_new(vars, name, json_integer((json_int_t)metrics_get(i)));
    }
    uint64_t lat_n = metrics_get(METRICS_PROBES_LATENCY_COUNT);
    uint64_t lat_sum = metrics_get(METRICS_PROBES_LATENCY_SUM_US);
    uint64_t lat_max = metrics_get(METRICS_PROBES_LATENCY_MAX_US);
    json_t *timer = json_object();
    json_object_set_new(timer, "count", json_integer((json_int_t)lat_n));
    json_object_set_new(timer, "mean",
                        json_real(lat_n ? (double)lat_sum * 1000.0 / (double)lat_n : 0));
    json_object_set_new(timer, "max", json_integer((json_int_t)lat_max * 1000));
    json_object_set_new(vars, "probes.latency", timer);
    json_object_set_new(vars, "consensus.is_leader", json_integer(st->is_leader));
    json_object_set_new(vars, "consensus.is_healthy", json_integer(st->is_healthy));
    if (st->has_backend) {
        json_object_set_new(vars, "backend.mysql.is_leader", json_integer(st->is_leader));
        json_object_set_new(vars, "backend.mysql.is_healthy", json_integer(st->is_healthy));
    }
    for (size_t i = 0; i < st->nstores; i++) {
        const struct metrics_store *s = &st->stores[i];
        char *key;
        if (s->has_value && s->ok) {
            key = xasprintf("aggregated.mysql.%s", s->name);
            set_new(vars, key, json_real(s->value));
            free(key);
        }
        if (s->ever_healthy) {
            key = xasprintf("check.mysql.%s.seconds_since_healthy", s->name);
            set_new(vars, key, json_integer(s->seconds_since_healthy));
            free(key);
        }
        /* A metric's name after "mysql/" stands where a cluster's does. */
        for (size_t j = 0; j < s->nmetrics; j++) {
            const struct metrics_metric *m = &s->metrics[j];
            if (m->has_value && m->ok) {
                key = xasprintf("aggregated.mysql.%s/%s", s->name, m->metric);
                set_new(vars, key, json_real(m->value));
                free(key);
            }
            if (m->ever_healthy) {
                key = xasprintf("check.mysql.%s/%s.seconds_since_healthy", s->name, m->metric);
                set_new(vars, key, json_integer(m->seconds_since_healthy));
                free(key);
            }
        }
    }
    struct vars_ctx x = {.vars = vars, .kind = 1};
    if (st->checks != NULL) {
        check_counters_each_store(st->checks, on_vars, &x);
        x.kind = 0;
        check_counters_each_app(st->checks, on_vars, &x);
        x.kind = 2;
        check_counters_each_app_store(st->checks, on_vars, &x);
    }
    size_t n;
    struct throttle_row *rows = throttle_rows(st, &n);
    for (size_t i = 0; i < n; i++) {
        /* 1 per throttled app, as the original's gauge (the ratio is in
         * /metrics); an ended throttle is left out rather than kept at 0. */
        char *key = xasprintf("throttled_states.%s", rows[i].key);
        set_new(vars, key, json_integer(1));
        free(key);
    }
    free(rows);
    char *dv = json_dumps(vars, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(15));
    json_decref(vars);
    char *out = xasprintf("%s\n", dv ? dv : "{}");
    free(dv);
    *len = strlen(out);
    return out;
}
