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

struct prom_ctx {
    struct expo *e;
    const char *store; /* for the store table: which store to find */
    int which;         /* 0: total, 1: error, 2: internal error */
};

static uint64_t pick(const struct check_counts *c, int which)
{
    return which == 0 ? c->total : which == 1 ? c->error : c->internal_error;
}

static void on_app(const char *app, const char *store, const struct check_counts *c, void *arg)
{
    (void)store;
    struct prom_ctx *x = arg;
    struct expo_label l[] = {{"app", app}};
    expo_sample_u64(x->e, NULL, l, 1, pick(c, x->which));
}

static void on_app_store(const char *app, const char *store, const struct check_counts *c,
                         void *arg)
{
    struct prom_ctx *x = arg;
    struct expo_label l[] = {{"app", app}, {"store", store}};
    expo_sample_u64(x->e, NULL, l, 2, pick(c, x->which));
}

static void prom_process(struct expo *e)
{
    expo_family(e, "freno_checks_total", EXPO_COUNTER,
                "Checks answered for store type mysql, every app and store (check.any.total).");
    expo_sample_u64(e, NULL, NULL, 0, metrics_get(METRICS_CHECK_ANY_TOTAL));
    expo_family(e, "freno_check_errors_total", EXPO_COUNTER,
                "Checks answered with a status other than 200 (check.any.error).");
    expo_sample_u64(e, NULL, NULL, 0, metrics_get(METRICS_CHECK_ANY_ERROR));
    expo_family(e, "freno_check_internal_errors_total", EXPO_COUNTER,
                "Checks answered 500 (check.any.internal-error).");
    expo_sample_u64(e, NULL, NULL, 0, metrics_get(METRICS_CHECK_ANY_INTERNAL_ERROR));
    expo_family(
            e, "freno_check_events_dropped_total", EXPO_COUNTER,
            "Checks left out of the per-app counters and recent apps because a queue to the loop was full.");
    expo_sample_u64(e, NULL, NULL, 0, metrics_get(METRICS_CHECK_EVENTS_DROPPED));
    expo_family(e, "freno_probes_total", EXPO_COUNTER, "Probes of MySQL hosts completed.");
    expo_sample_u64(e, NULL, NULL, 0, metrics_get(METRICS_PROBES_TOTAL));
    expo_family(e, "freno_probe_errors_total", EXPO_COUNTER, "Probes of MySQL hosts that failed.");
    expo_sample_u64(e, NULL, NULL, 0, metrics_get(METRICS_PROBES_ERROR));
    expo_family(e, "freno_probe_duration_seconds", EXPO_SUMMARY, "Time probes took.");
    expo_sample(e, "_sum", NULL, 0, (double)metrics_get(METRICS_PROBES_LATENCY_SUM_US) / 1e6);
    expo_sample_u64(e, "_count", NULL, 0, metrics_get(METRICS_PROBES_LATENCY_COUNT));
    expo_family(e, "freno_probe_duration_max_seconds", EXPO_GAUGE,
                "Longest time a probe took since start.");
    expo_sample(e, NULL, NULL, 0, (double)metrics_get(METRICS_PROBES_LATENCY_MAX_US) / 1e6);
    expo_family(
            e, "freno_http_checks_total", EXPO_COUNTER,
            "HTTP checks of hosts by result: 200, 404, other (another status), error (no answer), skipped (host of a cluster without HTTP checks).");
    static const struct {
        const char *result;
        enum metrics_counter c;
    } hc[] = {{"200", METRICS_HTTPCHECK_200},
              {"404", METRICS_HTTPCHECK_404},
              {"other", METRICS_HTTPCHECK_OTHER},
              {"error", METRICS_HTTPCHECK_ERROR},
              {"skipped", METRICS_HTTPCHECK_SKIP}};
    for (size_t i = 0; i < sizeof(hc) / sizeof(hc[0]); i++) {
        struct expo_label l[] = {{"result", hc[i].result}};
        expo_sample_u64(e, NULL, l, 1, metrics_get(hc[i].c));
    }
}

static void prom_stores(struct expo *e, const struct metrics_state *st)
{
    expo_family(e, "freno_store_threshold", EXPO_GAUGE,
                "ThrottleThreshold of each store (MySQL cluster).");
    for (size_t i = 0; i < st->nstores; i++) {
        struct expo_label l[] = {{"store", st->stores[i].name}};
        expo_sample(e, NULL, l, 1, st->stores[i].threshold);
    }
    expo_family(e, "freno_store_value", EXPO_GAUGE,
                "Aggregated value of each store (its worst host), while it is healthy.");
    for (size_t i = 0; i < st->nstores; i++) {
        const struct metrics_store *s = &st->stores[i];
        struct expo_label l[] = {{"store", s->name}};
        if (s->has_value && s->ok)
            expo_sample(e, NULL, l, 1, s->value);
    }
    expo_family(e, "freno_store_healthy", EXPO_GAUGE,
                "1 when the store has an aggregated value that is not an error, else 0.");
    for (size_t i = 0; i < st->nstores; i++) {
        const struct metrics_store *s = &st->stores[i];
        struct expo_label l[] = {{"store", s->name}};
        expo_sample(e, NULL, l, 1, s->has_value && s->ok ? 1 : 0);
    }
    expo_family(e, "freno_store_seconds_since_healthy", EXPO_GAUGE,
                "Seconds since the store last passed its self check, for stores that ever did.");
    for (size_t i = 0; i < st->nstores; i++) {
        const struct metrics_store *s = &st->stores[i];
        struct expo_label l[] = {{"store", s->name}};
        if (s->ever_healthy)
            expo_sample(e, NULL, l, 1, (double)s->seconds_since_healthy);
    }
    expo_family(e, "freno_store_hosts", EXPO_GAUGE, "Hosts probed for each store.");
    for (size_t i = 0; i < st->nstores; i++) {
        struct expo_label l[] = {{"store", st->stores[i].name}};
        expo_sample_u64(e, NULL, l, 1, st->stores[i].nhosts);
    }
    static const char *const names[3] = {"freno_store_checks_total",
                                         "freno_store_check_errors_total",
                                         "freno_store_check_internal_errors_total"};
    static const char *const helps[3] = {
            "Checks answered for each store.",
            "Checks answered for each store with a status other than 200.",
            "Checks answered 500 for each store."};
    for (int w = 0; w < 3; w++) {
        expo_family(e, names[w], EXPO_COUNTER, helps[w]);
        for (size_t i = 0; i < st->nstores; i++) {
            const struct check_counts *c =
                    st->checks ? check_counters_store(st->checks, st->stores[i].name) : NULL;
            struct expo_label l[] = {{"store", st->stores[i].name}};
            expo_sample_u64(e, NULL, l, 1, c ? pick(c, w) : 0);
        }
    }
}

static void prom_hosts(struct expo *e, const struct metrics_state *st)
{
    expo_family(e, "freno_host_up", EXPO_GAUGE,
                "1 when the last probe of the host succeeded, else 0 (failed or none yet).");
    for (size_t i = 0; i < st->nstores; i++) {
        const struct metrics_store *s = &st->stores[i];
        for (size_t j = 0; j < s->nhosts; j++) {
            struct expo_label l[] = {{"store", s->name}, {"host", s->hosts[j].key}};
            expo_sample(e, NULL, l, 2, s->hosts[j].ok ? 1 : 0);
        }
    }
    expo_family(e, "freno_host_value", EXPO_GAUGE,
                "Value of the last successful probe of the host, while its last probe succeeded.");
    for (size_t i = 0; i < st->nstores; i++) {
        const struct metrics_store *s = &st->stores[i];
        for (size_t j = 0; j < s->nhosts; j++) {
            struct expo_label l[] = {{"store", s->name}, {"host", s->hosts[j].key}};
            if (s->hosts[j].ok)
                expo_sample(e, NULL, l, 2, s->hosts[j].value);
        }
    }
    expo_family(e, "freno_host_probe_errors_total", EXPO_COUNTER,
                "Failed probes of the host since it joined the store's probed set.");
    for (size_t i = 0; i < st->nstores; i++) {
        const struct metrics_store *s = &st->stores[i];
        for (size_t j = 0; j < s->nhosts; j++) {
            struct expo_label l[] = {{"store", s->name}, {"host", s->hosts[j].key}};
            expo_sample_u64(e, NULL, l, 2, s->hosts[j].probe_errors);
        }
    }
}

static void prom_apps(struct expo *e, const struct metrics_state *st)
{
    static const char *const app_names[3] = {"freno_app_checks_total",
                                             "freno_app_check_errors_total",
                                             "freno_app_check_internal_errors_total"};
    static const char *const app_helps[3] = {
            "Checks answered for each app, on stores that exist.",
            "Checks answered for each app with a status other than 200.",
            "Checks answered 500 for each app."};
    static const char *const pair_names[3] = {"freno_app_store_checks_total",
                                              "freno_app_store_check_errors_total",
                                              "freno_app_store_check_internal_errors_total"};
    static const char *const pair_helps[3] = {
            "Checks answered for each app and store.",
            "Checks answered for each app and store with a status other than 200.",
            "Checks answered 500 for each app and store."};
    struct prom_ctx x = {.e = e};
    for (int w = 0; w < 3; w++) {
        expo_family(e, app_names[w], EXPO_COUNTER, app_helps[w]);
        x.which = w;
        if (st->checks != NULL)
            check_counters_each_app(st->checks, on_app, &x);
    }
    for (int w = 0; w < 3; w++) {
        expo_family(e, pair_names[w], EXPO_COUNTER, pair_helps[w]);
        x.which = w;
        if (st->checks != NULL)
            check_counters_each_app_store(st->checks, on_app_store, &x);
    }
    struct check_counters_stats cs = {0};
    if (st->checks != NULL)
        check_counters_get_stats(st->checks, &cs);
    expo_family(e, "freno_counted_apps", EXPO_GAUGE,
                "Apps with their own counters (at most MaxCountedApps).");
    expo_sample_u64(e, NULL, NULL, 0, cs.apps);
    expo_family(
            e, "freno_counted_apps_evicted_total", EXPO_COUNTER,
            "Apps whose counters were dropped, least recently counted first, to stay within MaxCountedApps.");
    expo_sample_u64(e, NULL, NULL, 0, cs.apps_evicted);
    expo_family(e, "freno_counted_app_stores", EXPO_GAUGE,
                "App and store pairs with their own counters (at most MaxCountedAppStores).");
    expo_sample_u64(e, NULL, NULL, 0, cs.app_stores);
    expo_family(
            e, "freno_counted_app_stores_evicted_total", EXPO_COUNTER,
            "App and store pairs whose counters were dropped to stay within MaxCountedAppStores.");
    expo_sample_u64(e, NULL, NULL, 0, cs.app_stores_evicted);
}

static void prom_operator(struct expo *e, const struct metrics_state *st)
{
    size_t n;
    struct throttle_row *rows = throttle_rows(st, &n);
    expo_family(e, "freno_throttled_apps", EXPO_GAUGE, "Apps throttled by an operator.");
    expo_sample_u64(e, NULL, NULL, 0, st->throttled_apps);
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
    expo_family(e, "freno_skipped_hosts", EXPO_GAUGE, "Hosts skipped by an operator.");
    expo_sample_u64(e, NULL, NULL, 0, st->skipped_hosts);
    expo_family(e, "freno_recent_apps", EXPO_GAUGE,
                "App and client pairs listed by /recent-apps (at most MaxRecentApps).");
    expo_sample_u64(e, NULL, NULL, 0, st->recent_apps);
    expo_family(
            e, "freno_recent_apps_evicted_total", EXPO_COUNTER,
            "App and client pairs dropped from /recent-apps before their 24 hours, least recently seen first, to stay within MaxRecentApps.");
    expo_sample_u64(e, NULL, NULL, 0, st->recent_apps_evicted);
}

char *metrics_render_prometheus(const struct metrics_state *st, size_t *len)
{
    struct expo *e = expo_new();
    prom_process(e);
    expo_family(e, "freno_leader", EXPO_GAUGE, "1 when this node is the leader, else 0.");
    expo_sample(e, NULL, NULL, 0, st->is_leader ? 1 : 0);
    expo_family(e, "freno_consensus_healthy", EXPO_GAUGE,
                "1 when the election (raft or the MySQL backend) is healthy, else 0.");
    expo_sample(e, NULL, NULL, 0, st->is_healthy ? 1 : 0);
    prom_stores(e, st);
    prom_hosts(e, st);
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
        char *key = xasprintf("throttled_states.%s", rows[i].key);
        set_new(vars, key, json_real(rows[i].ratio));
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
