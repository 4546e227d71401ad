/* SPDX-License-Identifier: MIT */
/* Unit tests for the throttler with its clock injected: the test owns the
 * time, calls the timer ticks itself and reads what each step published.
 * Probes are the real ones; only their MySQL connections are stand-ins
 * (linked over myconn_* with --wrap, see CMakeLists.txt), so a probe
 * result arrives the way it does in the daemon, through the query's done
 * callback, when the test answers. loop_now_ms, which stamps probe results,
 * is wrapped to read the same test clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "core/limits.h"
#include "loop/loop.h"
#include "mysql/myasync.h"
#include "snapshot/check.h"
#include "snapshot/events.h"
#include "snapshot/snapshot.h"
#include "throttler/throttler.h"
#include "throttler/throttler_impl.h"

#define T0      1700000000000ull /* an arbitrary wall time */
#define MIN_MS  (60ull * 1000)
#define HOUR_MS (3600ull * 1000)

/* The one clock: the throttler's (injected) and the probes' (wrapped). */
static uint64_t now_ms;

static uint64_t test_clock(void *arg)
{
    return *(const uint64_t *)arg;
}

/* ---- stand-in connections ---- */

struct myconn {
    char name[300];     /* "host:port" */
    char sql[64];       /* the query it runs: a probe's connection runs one */
    myconn_done_fn *cb; /* the query in flight, if any */
    void *arg;
    unsigned queries; /* queries started */
};

#define MAX_CONNS 16
static struct myconn *conns[MAX_CONNS];

struct myconn *__wrap_myconn_new(struct loop *loop, const struct myconn_params *p);
void __wrap_myconn_free(struct myconn *c);
int __wrap_myconn_query(struct myconn *c, const char *sql, myconn_done_fn *cb, void *arg);
const char *__wrap_myconn_name(const struct myconn *c);
unsigned int __wrap_myconn_last_errno(const struct myconn *c);
uint64_t __wrap_loop_now_ms(struct loop *l);

struct myconn *__wrap_myconn_new(struct loop *loop, const struct myconn_params *p)
{
    (void)loop;
    struct myconn *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    snprintf(c->name, sizeof(c->name), "%s:%u", p->host, (unsigned)p->port);
    for (size_t i = 0; i < MAX_CONNS; i++) {
        if (conns[i] == NULL) {
            conns[i] = c;
            return c;
        }
    }
    fail_msg("more than %d connections", MAX_CONNS);
    return NULL;
}

void __wrap_myconn_free(struct myconn *c)
{
    for (size_t i = 0; i < MAX_CONNS; i++)
        if (conns[i] == c)
            conns[i] = NULL;
    free(c);
}

int __wrap_myconn_query(struct myconn *c, const char *sql, myconn_done_fn *cb, void *arg)
{
    assert_true(strcmp(sql, "select v") == 0 || strcmp(sql, "select t") == 0);
    assert_true(c->sql[0] == '\0' || strcmp(c->sql, sql) == 0);
    snprintf(c->sql, sizeof(c->sql), "%s", sql);
    assert_null(c->cb); /* a probe never overlaps with itself */
    c->cb = cb;
    c->arg = arg;
    c->queries++;
    return 0;
}

const char *__wrap_myconn_name(const struct myconn *c)
{
    return c->name;
}

unsigned int __wrap_myconn_last_errno(const struct myconn *c)
{
    (void)c;
    return 0;
}

uint64_t __wrap_loop_now_ms(struct loop *l)
{
    (void)l;
    return now_ms;
}

/* The connection to @name ("host:port") that ran @sql, or NULL when no
 * probe has one. */
static struct myconn *conn_sql(const char *name, const char *sql)
{
    for (size_t i = 0; i < MAX_CONNS; i++)
        if (conns[i] != NULL && strcmp(conns[i]->name, name) == 0 &&
            strcmp(conns[i]->sql, sql) == 0)
            return conns[i];
    return NULL;
}

/* The connection of MetricQuery's probe of @name. */
static struct myconn *conn(const char *name)
{
    return conn_sql(name, "select v");
}

static unsigned queries_sql(const char *name, const char *sql)
{
    struct myconn *c = conn_sql(name, sql);
    return c != NULL ? c->queries : 0;
}

static unsigned queries(const char *name)
{
    return queries_sql(name, "select v");
}

/* Completes the query @sql in flight on @name with @status; a success
 * returns one row holding @cell. */
static void finish_sql(const char *name, const char *sql, enum myconn_status status,
                       const char *cell)
{
    struct myconn *c = conn_sql(name, sql);
    assert_non_null(c);
    assert_non_null(c->cb);
    myconn_done_fn *cb = c->cb;
    c->cb = NULL;
    const char *cols[] = {"v"};
    const char *cells[] = {cell};
    struct myresult r = {.nrows = 1, .ncols = 1, .colnames = cols, .cells = cells};
    cb(c, status, status == MYCONN_OK ? &r : NULL, status == MYCONN_OK ? "" : cell, c->arg);
}

static void finish(const char *name, enum myconn_status status, const char *cell)
{
    finish_sql(name, "select v", status, cell);
}

static void answer(const char *name, const char *value)
{
    finish(name, MYCONN_OK, value);
}

/* ---- fixture ---- */

struct fixture {
    struct loop *loop;
    struct config *cfg;
    struct throttler *t;
};

/* Cluster c1 of host db1, MetricQuery "select v" at 1 with @cache_millis,
 * and @more of its keys (", ..." or ""). */
static struct fixture *start_with(int64_t cache_millis, const char *more)
{
    static struct fixture f;
    char json[1024];
    snprintf(
            json, sizeof(json),
            "{\"BackendMySQLHost\": \"127.0.0.1\", \"BackendMySQLSchema\": \"freno\", \"Stores\": {\"MySQL\": {\"User\": \"u\", \"Password\": \"p\", \"Clusters\": {"
            "\"c1\": {\"MetricQuery\": \"select v\", \"ThrottleThreshold\": 1,"
            " \"CacheMillis\": %lld, \"StaticHostsSettings\": {\"Hosts\": [\"db1:3306\"]}%s}}}}}",
            (long long)cache_millis, more);
    struct config_diag d = {0};
    int rc = config_load_string(json, "t.json", &f.cfg, &d);
    for (size_t i = 0; i < d.errors_len; i++)
        print_error("%s\n", d.errors[i]);
    config_diag_deinit(&d);
    assert_int_equal(rc, 0);
    now_ms = T0;
    snapshot_init();
    f.loop = loop_new();
    assert_non_null(f.loop);
    struct throttler_params p = {.loop = f.loop,
                                 .cfg = f.cfg,
                                 .hostname = "h1",
                                 .service_id = "h1:8087",
                                 .clock = test_clock,
                                 .clock_arg = &now_ms};
    f.t = throttler_new(&p);
    return &f;
}

static struct fixture *start(int64_t cache_millis)
{
    return start_with(cache_millis, "");
}

static void unexpected_event(const struct check_event *e, void *arg)
{
    (void)arg;
    fail_msg("check record of %s left in the rings", e->app);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    throttler_free(f->t);
    loop_free(f->loop);
    snapshot_shutdown();
    config_free(f->cfg);
    assert_int_equal(events_drain(unexpected_event, NULL), 0);
    return 0;
}

static int setup_plain(void **state)
{
    *state = start(0);
    return 0;
}

static int setup_cached(void **state)
{
    *state = start(1000);
    return 0;
}

/* c1 with one more metric, "t": "select t" at 5, cached 2.5 s. */
static int setup_metrics(void **state)
{
    *state = start_with(0, ", \"Metrics\": {\"t\": {\"Query\": \"select t\", \"Threshold\": 5, "
                           "\"CacheMillis\": 2500}}");
    return 0;
}

/* ---- reading what was published ---- */

/* What a published snapshot shows of cluster c1 and the operator state. */
struct seen {
    uint64_t built_at_ms;
    bool has_metric;
    bool has_value;
    bool ok;
    double value;
    char err[256];
    uint64_t last_healthy_at_ms;
    bool share_known;
    size_t napps;
    size_t nhosts;
    size_t nrecents;
};

static struct seen look(void)
{
    struct seen v = {0};
    const struct snapshot *s = snapshot_acquire();
    assert_non_null(s);
    v.built_at_ms = s->built_at_ms;
    const struct snap_cluster *c = snapshot_find_cluster(s, "c1");
    const struct snap_metric *m = c != NULL ? &c->metrics[0] : NULL;
    if (m != NULL) {
        v.has_metric = true;
        v.has_value = m->has_value;
        v.ok = m->ok;
        v.value = m->value;
        snprintf(v.err, sizeof(v.err), "%s", m->err ? m->err : "");
        v.last_healthy_at_ms = m->last_healthy_at_ms;
        v.share_known = m->share_known;
    }
    v.napps = s->apps->len;
    v.nhosts = s->hosts->len;
    v.nrecents = s->recents->len;
    snapshot_release(s);
    return v;
}

/* The expiry the published snapshot shows for app @key; 1 when absent. */
static uint64_t app_expiry(const char *key)
{
    const struct snapshot *s = snapshot_acquire();
    const struct snap_app *a = snapshot_find_app(s, key);
    uint64_t at = a != NULL ? a->expire_at_ms : 1;
    snapshot_release(s);
    return at;
}

/* The check answer for @app on c1 from the published snapshot at now_ms. */
static int check(const char *app)
{
    struct check_request r = {.app = app, .store_type = "mysql", .store_name = "c1"};
    struct check_result res;
    const struct snapshot *s = snapshot_acquire();
    check_decide(s, &r, now_ms, 0.5, &res);
    snapshot_release(s);
    return res.status;
}

/* Whether the published /debug/vars text contains @needle. */
static bool vars_have(const char *needle)
{
    const struct snapshot *s = snapshot_acquire();
    bool found = strstr(s->text->debug_vars_json, needle) != NULL;
    snapshot_release(s);
    return found;
}

/* Whether the published recent apps list "@key" (app/client). */
static uint64_t recent_at(const char *key)
{
    char quoted[300];
    snprintf(quoted, sizeof(quoted), "\"%s\"", key);
    uint64_t at = 0;
    const struct snapshot *s = snapshot_acquire();
    for (size_t i = 0; i < s->recents->len; i++)
        if (strcmp(s->recents->v[i].key_json, quoted) == 0)
            at = s->recents->v[i].checked_at_ms;
    snapshot_release(s);
    return at;
}

static void count_host(const char *host, uint16_t port, void *arg)
{
    (void)host;
    (void)port;
    (*(size_t *)arg)++;
}

static size_t probed_hosts(struct throttler *t)
{
    size_t n = 0;
    throttler_each_cluster_host(t, 0, count_host, &n);
    return n;
}

static void set_hosts(struct throttler *t, size_t n)
{
    struct config_hostport hp[] = {{.host = "db1", .port = 3306}, {.host = "db2", .port = 3306}};
    throttler_set_cluster_hosts(t, 0, hp, n);
}

/* Leads, answers db1's first probe with @value and aggregates. */
static void lead_with_value(struct fixture *f, const char *value)
{
    throttler_set_leader(f->t, true);
    answer("db1:3306", value);
    throttler_tick_aggregate(f->t);
}

/* ---- tests ---- */

static void test_first_snapshot(void **state)
{
    (void)state;
    struct seen v = look();
    assert_int_equal(v.built_at_ms, T0);
    assert_true(v.has_metric);
    assert_false(v.has_value);
    assert_int_equal(v.napps, 1); /* the built-in abusing-app */
    assert_int_equal(app_expiry("abusing-app"), T0 + 3650ull * 24 * HOUR_MS);
    assert_int_equal(v.nhosts, 0);
    assert_int_equal(v.nrecents, 0);
    assert_int_equal(check("app"), 404);
    /* A follower does not probe. */
    assert_int_equal(queries("db1:3306"), 0);
}

static void test_aggregate_published_at_the_clock(void **state)
{
    struct fixture *f = *state;
    throttler_set_leader(f->t, true);
    assert_int_equal(queries("db1:3306"), 1);
    now_ms = T0 + 7;
    answer("db1:3306", "0.5");
    now_ms = T0 + 25;
    throttler_tick_aggregate(f->t);
    struct seen v = look();
    assert_int_equal(v.built_at_ms, T0 + 25);
    assert_true(v.has_value && v.ok);
    assert_true(v.value == 0.5);
    assert_int_equal(check("app"), 200);
    /* /debug/vars follows at the 1 s rebuild. */
    assert_false(vars_have("\"aggregated.mysql.c1\""));
    throttler_tick_slow(f->t);
    assert_true(vars_have("\"aggregated.mysql.c1\":0.5"));
    assert_int_equal(look().built_at_ms, T0 + 25);

    /* A failing host makes the aggregate its error. */
    throttler_tick_collect(f->t);
    finish("db1:3306", MYCONN_ERR_QUERY, "boom [mysql 1146]");
    now_ms = T0 + 50;
    throttler_tick_aggregate(f->t);
    v = look();
    assert_true(v.has_value);
    assert_false(v.ok);
    assert_non_null(strstr(v.err, "boom [mysql 1146]"));
    assert_int_equal(check("app"), 500);

    /* Stepping down drops the aggregate at once. */
    throttler_set_leader(f->t, false);
    v = look();
    assert_false(v.has_value);
    assert_int_equal(check("app"), 404);
}

static void test_aggregate_expires_after_5s(void **state)
{
    struct fixture *f = *state;
    lead_with_value(f, "0.5");
    uint64_t at = now_ms;
    /* A new host that never answers keeps the cluster from aggregating. */
    now_ms = at + 1000;
    set_hosts(f->t, 2);
    assert_int_equal(queries("db2:3306"), 1);
    throttler_tick_aggregate(f->t);
    assert_true(look().has_value);
    now_ms = at + 5000;
    throttler_tick_aggregate(f->t);
    assert_true(look().has_value);
    assert_int_equal(check("app"), 200);
    now_ms = at + 5001;
    throttler_tick_aggregate(f->t);
    struct seen v = look();
    assert_false(v.has_value);
    assert_int_equal(v.built_at_ms, at + 5001);
    assert_int_equal(check("app"), 404);
    /* The late answer brings it back. */
    answer("db2:3306", "0.75");
    throttler_tick_aggregate(f->t);
    v = look();
    assert_true(v.has_value && v.ok);
    assert_true(v.value == 0.75);
}

static void test_cache_millis_reuses_a_success(void **state)
{
    struct fixture *f = *state;
    lead_with_value(f, "0.5"); /* completed at T0 */
    now_ms = T0 + 999;
    throttler_tick_collect(f->t);
    assert_int_equal(queries("db1:3306"), 1);
    now_ms = T0 + 1000;
    throttler_tick_collect(f->t);
    assert_int_equal(queries("db1:3306"), 2);
    /* An error is never reused. */
    finish("db1:3306", MYCONN_ERR_QUERY, "boom");
    now_ms = T0 + 1001;
    throttler_tick_collect(f->t);
    assert_int_equal(queries("db1:3306"), 3);
}

static void test_no_cache_probes_every_tick(void **state)
{
    struct fixture *f = *state;
    lead_with_value(f, "0.5");
    now_ms = T0 + 50;
    throttler_tick_collect(f->t);
    assert_int_equal(queries("db1:3306"), 2);
    /* A probe still running is not started again. */
    now_ms = T0 + 100;
    throttler_tick_collect(f->t);
    assert_int_equal(queries("db1:3306"), 2);
}

static void test_app_throttle_ttl_and_sweep(void **state)
{
    struct fixture *f = *state;
    lead_with_value(f, "0.5");
    struct err err = {0};
    assert_int_equal(throttler_throttle_app(f->t, "app1", true, 1, true, 1.0, &err), 0);
    struct seen v = look();
    assert_int_equal(v.built_at_ms, T0); /* published at once */
    assert_int_equal(v.napps, 2);
    assert_int_equal(app_expiry("app1"), T0 + MIN_MS);
    now_ms = T0 + MIN_MS - 1;
    assert_int_equal(check("app1"), 417);
    throttler_tick_sweep(f->t);
    assert_int_equal(look().napps, 2);
    /* Expired at its instant, listed until the sweep. */
    now_ms = T0 + MIN_MS;
    assert_int_equal(check("app1"), 200);
    assert_int_equal(look().napps, 2);
    throttler_tick_sweep(f->t);
    v = look();
    assert_int_equal(v.napps, 1);
    assert_int_equal(v.built_at_ms, T0 + MIN_MS);
    assert_int_equal(app_expiry("app1"), 1);
}

static void test_skipped_host_expires_back_into_the_set(void **state)
{
    struct fixture *f = *state;
    throttler_set_leader(f->t, true);
    set_hosts(f->t, 2);
    assert_int_equal(probed_hosts(f->t), 2);
    struct err err = {0};
    assert_int_equal(throttler_skip_host(f->t, "db2", true, 1, &err), 0);
    assert_int_equal(probed_hosts(f->t), 1);
    assert_null(conn("db2:3306")); /* its probe went with it */
    assert_int_equal(look().nhosts, 1);
    /* A new inventory list keeps it out while the skip lasts. */
    now_ms = T0 + MIN_MS - 1;
    set_hosts(f->t, 2);
    throttler_tick_sweep(f->t);
    assert_int_equal(probed_hosts(f->t), 1);
    assert_int_equal(look().nhosts, 1);
    now_ms = T0 + MIN_MS;
    throttler_tick_sweep(f->t);
    assert_int_equal(probed_hosts(f->t), 2);
    assert_int_equal(queries("db2:3306"), 1); /* probed at once: this node leads */
    struct seen v = look();
    assert_int_equal(v.nhosts, 0);
    assert_int_equal(v.built_at_ms, T0 + MIN_MS);
}

static void test_skip_default_ttl_and_recover(void **state)
{
    struct fixture *f = *state;
    struct err err = {0};
    assert_int_equal(throttler_skip_host(f->t, "db1", false, 0, &err), 0);
    assert_int_equal(probed_hosts(f->t), 0);
    now_ms = T0 + 60 * MIN_MS - 1;
    throttler_tick_sweep(f->t);
    assert_int_equal(probed_hosts(f->t), 0);
    throttler_recover_host(f->t, "db1");
    assert_int_equal(probed_hosts(f->t), 1);
    assert_int_equal(look().nhosts, 0);
}

static void test_recent_apps_kept_24h(void **state)
{
    struct fixture *f = *state;
    events_push(T0, 200, "app1", "c1", "10.0.0.1");
    events_push(T0, 429, "app1", "nope", "10.0.0.2");
    throttler_tick_aggregate(f->t);       /* takes the records */
    assert_int_equal(look().nrecents, 0); /* listed from the next 1 s rebuild */
    now_ms = T0 + 1000;
    throttler_tick_slow(f->t);
    assert_int_equal(recent_at("app1/10.0.0.1"), T0);
    assert_int_equal(recent_at("app1/10.0.0.2"), T0);
    /* Counters only for stores that exist. */
    assert_true(vars_have("\"check.app1.mysql.c1.total\":1"));
    assert_false(vars_have("nope"));

    now_ms = T0 + 24 * HOUR_MS;
    throttler_tick_sweep(f->t);
    throttler_tick_slow(f->t);
    assert_int_equal(recent_at("app1/10.0.0.1"), T0);
    now_ms = T0 + 24 * HOUR_MS + 1;
    throttler_tick_sweep(f->t);
    throttler_tick_slow(f->t);
    assert_int_equal(recent_at("app1/10.0.0.1"), 0);
    assert_int_equal(look().nrecents, 0);
}

static void test_self_check_health_timestamps(void **state)
{
    struct fixture *f = *state;
    lead_with_value(f, "0.5");
    assert_int_equal(look().last_healthy_at_ms, 0);
    now_ms = T0 + 100;
    throttler_tick_self_check(f->t);
    throttler_tick_aggregate(f->t);
    assert_int_equal(look().last_healthy_at_ms, T0 + 100);

    /* Over the threshold: the self check fails, the time stays. */
    throttler_tick_collect(f->t);
    answer("db1:3306", "2");
    throttler_tick_aggregate(f->t);
    now_ms = T0 + 200;
    throttler_tick_self_check(f->t);
    throttler_tick_aggregate(f->t);
    assert_int_equal(look().last_healthy_at_ms, T0 + 100);
    assert_int_equal(check("app"), 429);

    now_ms = T0 + 3100;
    throttler_tick_slow(f->t);
    assert_true(vars_have("\"check.mysql.c1.seconds_since_healthy\":3"));
    /* Self checks count and show in recent apps as local clients. */
    assert_int_equal(recent_at("freno/local"), T0 + 200);
    assert_int_equal(recent_at("freno-share-domain/local"), T0 + 200);
    assert_true(vars_have("\"check.freno.mysql.c1.total\":2"));
    assert_true(vars_have("\"check.freno.mysql.c1.error\":1"));
}

static void test_follower_runs_no_self_checks(void **state)
{
    struct fixture *f = *state;
    now_ms = T0 + 100;
    throttler_tick_self_check(f->t);
    throttler_tick_slow(f->t);
    assert_int_equal(recent_at("freno/local"), 0);
    assert_int_equal(look().last_healthy_at_ms, 0);
}

static void test_share_health_kept_5s(void **state)
{
    struct fixture *f = *state;
    lead_with_value(f, "0.5");
    throttler_set_share_health(f->t, "mysql/c1", 3, T0);
    throttler_tick_aggregate(f->t);
    assert_true(look().share_known);
    assert_int_equal(check("app"), 429);
    assert_int_equal(check("freno"), 200); /* the freno app ignores peers */
    now_ms = T0 + 4999;
    throttler_tick_aggregate(f->t);
    assert_true(look().share_known);
    now_ms = T0 + 5000;
    throttler_tick_aggregate(f->t);
    assert_false(look().share_known);
    assert_int_equal(check("app"), 200);
}

static void test_put_leaves_publishing_pending(void **state)
{
    struct fixture *f = *state;
    now_ms = T0 + 10;
    throttler_put_app(f->t, "app2", T0 + HOUR_MS, 0.5);
    throttler_put_skipped_host(f->t, "db9", T0 + HOUR_MS);
    struct seen v = look();
    assert_int_equal(v.built_at_ms, T0);
    assert_int_equal(v.napps, 1);
    now_ms = T0 + 20;
    throttler_publish_pending(f->t);
    v = look();
    assert_int_equal(v.built_at_ms, T0 + 20);
    assert_int_equal(v.napps, 2);
    assert_int_equal(v.nhosts, 1);
    assert_int_equal(app_expiry("app2"), T0 + HOUR_MS);
}

/* ---- several metrics ---- */

struct hook_call {
    char metric[64];
    bool has_value, ok;
    double value;
};
static struct hook_call hook_calls[8];
static size_t nhook_calls;

static void on_aggregated(const char *metric, bool has_value, bool ok, double value, uint64_t at_ms,
                          void *arg)
{
    (void)at_ms;
    (void)arg;
    if (nhook_calls < 8) {
        struct hook_call *h = &hook_calls[nhook_calls++];
        snprintf(h->metric, sizeof(h->metric), "%s", metric);
        h->has_value = has_value;
        h->ok = ok;
        h->value = value;
    }
}

/* The published metric @name of c1 (copied out). */
static struct snap_metric seen_metric(const char *name, char *host, size_t host_size)
{
    const struct snapshot *s = snapshot_acquire();
    const struct snap_metric *m = snap_cluster_metric(snapshot_find_cluster(s, "c1"), name);
    assert_non_null(m);
    struct snap_metric v = *m;
    snprintf(host, host_size, "%s", m->host ? m->host : "");
    v.name = v.err = v.host = NULL;
    v.metric = NULL;
    v.live = NULL;
    snapshot_release(s);
    return v;
}

static int check_metric(const char *app, const char *metric, struct check_result *res)
{
    struct check_request r = {
            .app = app, .store_type = "mysql", .store_name = "c1", .metric = metric};
    const struct snapshot *s = snapshot_acquire();
    check_decide(s, &r, now_ms, 0.5, res);
    res->nmetrics = 0; /* its pointers die with the snapshot */
    snapshot_release(s);
    return res->status;
}

static void test_each_metric_is_probed_and_aggregated(void **state)
{
    struct fixture *f = *state;
    nhook_calls = 0;
    throttler_set_aggregate_hook(f->t, on_aggregated, NULL);
    throttler_set_leader(f->t, true);
    set_hosts(f->t, 2);
    /* One probe per host and metric. */
    assert_int_equal(queries_sql("db1:3306", "select v"), 1);
    assert_int_equal(queries_sql("db1:3306", "select t"), 1);
    assert_int_equal(queries_sql("db2:3306", "select v"), 1);
    assert_int_equal(queries_sql("db2:3306", "select t"), 1);
    answer("db1:3306", "0.25");
    answer("db2:3306", "0.5");
    finish_sql("db1:3306", "select t", MYCONN_OK, "7");
    /* A metric waits for all its hosts; the other is aggregated. */
    throttler_tick_aggregate(f->t);
    char host[300];
    struct snap_metric d = seen_metric(FRENO_METRIC_DEFAULT, host, sizeof(host));
    assert_true(d.has_value && d.ok && d.value == 0.5);
    assert_string_equal(host, "db2:3306");
    struct snap_metric t = seen_metric("t", host, sizeof(host));
    assert_false(t.has_value);
    assert_int_equal(t.retry_after_s, 3); /* CacheMillis 2500, rounded up */
    assert_int_equal(check("app"), 404);
    assert_int_equal(nhook_calls, 2);
    assert_string_equal(hook_calls[0].metric, "mysql/c1");
    assert_true(hook_calls[0].has_value && hook_calls[0].value == 0.5);
    assert_string_equal(hook_calls[1].metric, "mysql/c1/t");
    assert_false(hook_calls[1].has_value);

    finish_sql("db2:3306", "select t", MYCONN_OK, "3");
    throttler_tick_aggregate(f->t);
    t = seen_metric("t", host, sizeof(host));
    assert_true(t.has_value && t.ok && t.value == 7);
    assert_string_equal(host, "db1:3306");
    struct check_result res;
    assert_int_equal(check_metric("app", NULL, &res), 429);
    assert_int_equal(res.decided_by, 1);
    assert_int_equal(check_metric("app", FRENO_METRIC_DEFAULT, &res), 200);
    assert_int_equal(check_metric("app", "t", &res), 429);

    /* CacheMillis is the metric's own: at 50 ms the default metric is
     * probed again, "t" not before 2.5 s. */
    now_ms = T0 + 50;
    throttler_tick_collect(f->t);
    assert_int_equal(queries_sql("db1:3306", "select v"), 2);
    assert_int_equal(queries_sql("db1:3306", "select t"), 1);
    now_ms = T0 + 2500;
    throttler_tick_collect(f->t);
    assert_int_equal(queries_sql("db1:3306", "select t"), 2);

    /* The 1 s rebuild: /debug/vars and each metric's hosts. */
    throttler_tick_slow(f->t);
    assert_true(vars_have("\"aggregated.mysql.c1/t\":7"));
    assert_true(vars_have("\"aggregated.mysql.c1\":0.5"));
    const struct snapshot *s = snapshot_acquire();
    const struct snap_probe_set *ps = snapshot_find_probes(s, "mysql/c1/t");
    assert_non_null(ps);
    assert_int_equal(ps->len, 2);
    assert_string_equal(ps->v[0].host, "db1:3306");
    assert_true(ps->v[0].ok && ps->v[0].value == 7);
    assert_int_equal(ps->v[0].at_ms, T0);
    assert_non_null(snapshot_find_probes(s, "mysql/c1"));
    assert_null(snapshot_find_probes(s, "mysql/c1/nope"));
    snapshot_release(s);

    /* A failing host: the metric's error names it, the other metric is
     * unaffected. */
    finish_sql("db2:3306", "select t", MYCONN_ERR_QUERY, "boom [mysql 1146]");
    throttler_tick_aggregate(f->t);
    t = seen_metric("t", host, sizeof(host));
    assert_false(t.ok);
    assert_string_equal(host, "db2:3306");
    assert_int_equal(check_metric("app", NULL, &res), 500);
    assert_int_equal(check_metric("app", FRENO_METRIC_DEFAULT, &res), 200);
    now_ms = T0 + 3500;
    throttler_tick_slow(f->t);
    s = snapshot_acquire();
    ps = snapshot_find_probes(s, "mysql/c1/t");
    assert_false(ps->v[1].ok);
    assert_non_null(strstr(ps->v[1].err, "boom"));
    assert_int_equal(ps->v[1].probe_errors, 1);
    snapshot_release(s);
    throttler_set_aggregate_hook(f->t, NULL, NULL);
}

/* Each metric's health is its own: one over its threshold does not stop
 * the other from being healthy, and ShareDomain reports go by metric. */
/* A reload config: cluster c1 of host db1 with @c1 ("" leaves it out) and
 * c2 of host db2 with @c2 (likewise). */
static struct config *reload_config(const char *c1, const char *c2)
{
    char json[1024];
    snprintf(json, sizeof(json),
             "{\"BackendMySQLHost\": \"127.0.0.1\", \"BackendMySQLSchema\": \"freno\", "
             "\"Stores\": {\"MySQL\": {\"User\": \"u\", \"Password\": \"p\", \"Clusters\": {"
             "%s%s%s%s%s}}}}",
             c1[0] ? "\"c1\": {\"MetricQuery\": \"select v\", "
                     "\"StaticHostsSettings\": {\"Hosts\": [\"db1:3306\"]}, "
                   : "",
             c1, c1[0] ? "}" : "", c1[0] && c2[0] ? ", " : "",
             c2[0] ? "\"c2\": {\"MetricQuery\": \"select v\", "
                     "\"StaticHostsSettings\": {\"Hosts\": [\"db2:3306\"]}, "
                   : "");
    if (c2[0]) {
        size_t len = strlen(json);
        snprintf(json + len - 4, sizeof(json) - len + 4, "%s}}}}}", c2);
    }
    struct config *cfg = NULL;
    struct config_diag d = {0};
    int rc = config_load_string(json, "reload.json", &cfg, &d);
    for (size_t i = 0; i < d.errors_len; i++)
        print_error("%s\n", d.errors[i]);
    config_diag_deinit(&d);
    assert_int_equal(rc, 0);
    return cfg;
}

/* Switches @f to @cfg the way a reload does; the old config goes at once
 * (no reader thread here). */
static void reconfigure(struct fixture *f, struct config *cfg)
{
    throttler_reconfigure(f->t, cfg);
    config_free(f->cfg);
    f->cfg = cfg;
}

static bool has_cluster(const char *name)
{
    const struct snapshot *s = snapshot_acquire();
    bool found = snapshot_find_cluster(s, name) != NULL;
    snapshot_release(s);
    return found;
}

/* A reload keeps an unchanged host's probe (its connection), its aggregate
 * and the operator state, applies the new threshold and CacheMillis at
 * once, starts an added cluster, stops a removed one, and gives a cluster
 * whose login changed new connections. */
static void test_reconfigure_keeps_probes(void **state)
{
    struct fixture *f = *state;
    lead_with_value(f, "0.5");
    struct err err = {0};
    assert_int_equal(throttler_throttle_app(f->t, "x", true, 60, false, 0, &err), 0);
    struct myconn *db1 = conn("db1:3306");
    assert_non_null(db1);
    assert_int_equal(check("app"), 200);

    reconfigure(f, reload_config("\"ThrottleThreshold\": 0.2, \"CacheMillis\": 1000",
                                 "\"ThrottleThreshold\": 1"));
    assert_ptr_equal(conn("db1:3306"), db1);
    assert_true(look().has_value); /* no gap: the aggregate stayed */
    assert_int_equal(check("app"), 429);
    assert_int_equal(check("x"), 417);
    assert_true(has_cluster("c2"));
    assert_non_null(conn("db2:3306")); /* a leader probes an added cluster at once */
    now_ms = T0 + 500;
    throttler_tick_collect(f->t);
    assert_int_equal(queries("db1:3306"), 1); /* the new CacheMillis holds */

    /* c1 removed; c2 with another login. */
    finish("db2:3306", MYCONN_OK, "0.1");
    conn("db2:3306")->queries = 100;
    reconfigure(f, reload_config("", "\"User\": \"other\""));
    assert_false(has_cluster("c1"));
    assert_null(conn("db1:3306"));
    assert_true(has_cluster("c2"));
    assert_non_null(conn("db2:3306"));
    assert_int_equal(queries("db2:3306"), 1); /* a new connection */
    assert_int_equal(check("app"), 404);      /* c1 is no more */
    assert_int_equal(app_expiry("x"), T0 + 60 * MIN_MS);
}

static void test_health_per_metric(void **state)
{
    struct fixture *f = *state;
    throttler_set_leader(f->t, true);
    answer("db1:3306", "0.5");
    finish_sql("db1:3306", "select t", MYCONN_OK, "9");
    throttler_tick_aggregate(f->t);
    now_ms = T0 + 100;
    throttler_tick_self_check(f->t);
    throttler_tick_aggregate(f->t);
    char host[300];
    assert_int_equal(seen_metric(FRENO_METRIC_DEFAULT, host, sizeof(host)).last_healthy_at_ms,
                     T0 + 100);
    assert_int_equal(seen_metric("t", host, sizeof(host)).last_healthy_at_ms, 0);
    /* Counted once per cluster and app, as before. */
    now_ms = T0 + 1000;
    throttler_tick_slow(f->t);
    assert_true(vars_have("\"check.freno.mysql.c1.total\":1"));
    assert_true(vars_have("\"check.mysql.c1.seconds_since_healthy\":0"));
    assert_false(vars_have("c1/t.seconds_since_healthy"));

    throttler_set_share_health(f->t, "mysql/c1/t", 4, now_ms);
    throttler_tick_aggregate(f->t);
    assert_true(seen_metric("t", host, sizeof(host)).share_known);
    assert_false(seen_metric(FRENO_METRIC_DEFAULT, host, sizeof(host)).share_known);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_each_metric_is_probed_and_aggregated,
                                            setup_metrics, teardown),
            cmocka_unit_test_setup_teardown(test_health_per_metric, setup_metrics, teardown),
            cmocka_unit_test_setup_teardown(test_first_snapshot, setup_plain, teardown),
            cmocka_unit_test_setup_teardown(test_reconfigure_keeps_probes, setup_plain, teardown),
            cmocka_unit_test_setup_teardown(test_aggregate_published_at_the_clock, setup_plain,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_aggregate_expires_after_5s, setup_plain, teardown),
            cmocka_unit_test_setup_teardown(test_cache_millis_reuses_a_success, setup_cached,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_no_cache_probes_every_tick, setup_plain, teardown),
            cmocka_unit_test_setup_teardown(test_app_throttle_ttl_and_sweep, setup_plain, teardown),
            cmocka_unit_test_setup_teardown(test_skipped_host_expires_back_into_the_set,
                                            setup_plain, teardown),
            cmocka_unit_test_setup_teardown(test_skip_default_ttl_and_recover, setup_plain,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_recent_apps_kept_24h, setup_plain, teardown),
            cmocka_unit_test_setup_teardown(test_self_check_health_timestamps, setup_plain,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_follower_runs_no_self_checks, setup_plain,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_share_health_kept_5s, setup_plain, teardown),
            cmocka_unit_test_setup_teardown(test_put_leaves_publishing_pending, setup_plain,
                                            teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    events_shutdown();
    return rc;
}
