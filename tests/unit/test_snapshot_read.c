/* SPDX-License-Identifier: MIT */
/* Every API handler consumes the snapshot inside its read-side section. The
 * test is linked with -Wl,--wrap=snapshot_release: right after a handler
 * leaves its section, the wrapper publishes a new snapshot and waits until
 * the old one is freed, so a handler that still reads from it afterwards
 * trips AddressSanitizer (heap-use-after-free), and its answer must still
 * show what it read (the first snapshot), not the second. Also: /check
 * refuses to answer from a snapshot whose loop stopped beating. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <urcu-bp.h>
#include <uv.h>

#include "core/clock.h"
#include "core/jsonfmt.h"
#include "core/xalloc.h"
#include "http/http_api.h"
#include "loop/loop.h"
#include "snap_build.h"
#include "snapshot/check.h"
#include "snapshot/events.h"
#include "snapshot/snapshot.h"

void __real_snapshot_release(const struct snapshot *s);
void __wrap_snapshot_release(const struct snapshot *s);

static bool replace_on_release;
static int releases;
static uint64_t stale_after_ms; /* of the snapshots published next */

static struct snap_metric metric(const char *cluster, bool ok, double v, double thr,
                                 const char *err, uint64_t healthy_at_ms)
{
    struct snap_metric m = snap_build_metric(cluster, FRENO_METRIC_DEFAULT, true, ok, v, thr, err);
    m.last_healthy_at_ms = healthy_at_ms;
    return m;
}

/* Publishes a snapshot whose every heap string names generation @gen; the
 * snapshot holds the only references to its parts. */
static struct snap_text *text_part(int gen)
{
    char *vars = xasprintf("{\"gen\":%d}\n", gen);
    char *prom = xasprintf("gen %d\n", gen);
    return snap_text_new(vars, strlen(vars), prom, strlen(prom));
}

static void publish_generation(int gen)
{
    uint64_t now_ms = clock_wall_ms();
    struct snap_metric *mv = xcalloc(4, sizeof(*mv));
    char err[64];
    snprintf(err, sizeof(err), "replication not running gen%d", gen);
    mv[0] = metric("broken", false, 0, 1, err, now_ms - 5000);
    mv[1] = metric("c1", true, gen == 1 ? 2.5 : 0.5, gen == 1 ? 1 : 7, NULL, now_ms - 1000);
    /* A cluster with Metrics: its answers name hosts and say why. */
    mv[2] = metric("multi", true, 0.5, 1, NULL, now_ms - 1000);
    mv[3] = snap_build_metric("multi", "knob", true, gen != 1, 0, 5, err);
    mv[3].host = xasprintf("db-gen%d:3306", gen);
    struct snap_app *av = xcalloc(1, sizeof(*av));
    av[0] = (struct snap_app){xasprintf("app-gen%d", gen), 0, 1};
    struct snap_host *hv = xcalloc(1, sizeof(*hv));
    hv[0] = (struct snap_host){xasprintf("host-gen%d", gen), 0};
    struct snap_recent *rv = xcalloc(1, sizeof(*rv));
    rv[0] = (struct snap_recent){xasprintf("\"recent-gen%d/10.0.0.1\"", gen), now_ms};
    struct snap_service *sv = xcalloc(1, sizeof(*sv));
    sv[0] = (struct snap_service){xasprintf("dom-gen%d", gen), xasprintf("peer-gen%d:1", gen)};
    struct snap_leader l = {
            .is_leader = true,
            .healthy = true,
            .leader_id = xasprintf("leader-gen%d", gen),
            .state = xasprintf("Leader-gen%d", gen),
            .service_id = xasprintf("self-gen%d", gen),
            .domain = xasprintf("domain-gen%d", gen),
            .share_domain = xasprintf("share-gen%d", gen),
            .share_services = sv,
            .share_services_len = 1,
    };
    struct snapshot s = {
            .built_at_ms = now_ms,
            .stale_after_ms = stale_after_ms,
            .hostname = gen == 1 ? "hostname-gen1" : "hostname-gen2",
            .memcache_json = gen == 1 ? "{\"gen\":1}\n" : "{\"gen\":2}\n",
            .clusters = snap_build_clusters(mv, 4),
            .apps = snap_apps_new(av, 1),
            .hosts = snap_hosts_new(hv, 1),
            .recents = snap_recents_new(rv, 1),
            .text = text_part(gen),
            .leader = snap_leaders_new(&l),
    };
    snapshot_publish(&s);
    snap_clusters_unref(s.clusters);
    snap_apps_unref(s.apps);
    snap_hosts_unref(s.hosts);
    snap_recents_unref(s.recents);
    snap_text_unref(s.text);
    snap_leaders_unref(s.leader);
}

/* Leaves the section, then replaces the snapshot and waits for the grace
 * period and the deferred free of the one the caller was reading. */
void __wrap_snapshot_release(const struct snapshot *s)
{
    __real_snapshot_release(s);
    releases++;
    if (!replace_on_release)
        return;
    replace_on_release = false;
    publish_generation(2);
    synchronize_rcu();
    rcu_barrier();
}

static const char *no_lookup(void *ctx, const char *key)
{
    (void)ctx;
    (void)key;
    return NULL;
}

static void handle(struct loop *l, const char *path, struct http_resp *resp)
{
    struct http_api_ctx ctx = {.loop = l, .cmd_timeout_ms = 1000};
    struct http_req req = {.method = "GET",
                           .path = path,
                           .peer = "10.0.0.9",
                           .query = no_lookup,
                           .header = no_lookup};
    snapshot_init();
    publish_generation(1);
    replace_on_release = true;
    int before = releases;
    http_api_handle(&ctx, &req, resp);
    assert_int_equal(releases, before + 1); /* the section was left, and the snapshot replaced */
    assert_false(replace_on_release);
    snapshot_shutdown();
}

static void expect_body(struct loop *l, const char *path, int status, const char *want)
{
    struct http_resp resp;
    handle(l, path, &resp);
    if (resp.status != status || strstr(resp.body, want) == NULL)
        fail_msg("GET %s: status %d body %s; want %d and %s", path, resp.status, resp.body, status,
                 want);
    if (resp.heap)
        free(resp.body);
    if (resp.release != NULL) /* shared text, kept past the section by its own reference */
        resp.release(resp.release_arg);
}

static void test_check_answers_from_what_it_read(void **state)
{
    struct loop *l = *state;
    expect_body(l, "/check/app/mysql/c1", 429,
                "{\"StatusCode\":429,\"Value\":2.5,\"Threshold\":1,\"Message\":\"Threshold "
                "exceeded\"}");
    expect_body(l, "/check-if-exists/app/mysql/c1", 429, "\"Value\":2.5,\"Threshold\":1,");
    expect_body(l, "/check-read/app/mysql/c1/3", 200, "\"Value\":2.5,\"Threshold\":3,");
    expect_body(l, "/check/app/mysql/broken", 500, "\"Message\":\"replication not running gen1\"");
    expect_body(l, "/check/app-gen1/mysql/c1", 417, "\"Message\":\"App denied\"");
    expect_body(l, "/check/app/mysql/multi", 500,
                "\"Message\":\"replication not running gen1\",\"Metric\":\"knob\","
                "\"Reason\":\"mysql/multi/knob: error on db-gen1:3306: replication not running "
                "gen1\"");
    expect_body(l, "/check/app/mysql/multi", 500,
                "\"Host\":\"db-gen1:3306\",\"Message\":\"replication not running gen1\"}]}");
    expect_body(l, "/check/app-gen1/mysql/multi", 417,
                "\"Throttle\":{\"Key\":\"app-gen1\",\"ExpireAt\":\"0001-01-01T00:00:00Z\"");
}

static void test_other_handlers_answer_from_what_they_read(void **state)
{
    struct loop *l = *state;
    expect_body(l, "/aggregated-metrics", 200, "\"mysql/c1\":\"2.500000\"");
    expect_body(l, "/aggregated-metrics", 200,
                "\"mysql/multi/knob\":\"error: replication not running gen1\"");
    expect_body(l, "/metrics-health", 200, "\"mysql/c1\":{\"LastHealthyAt\"");
    expect_body(l, "/throttled-apps", 200, "\"app-gen1\"");
    expect_body(l, "/skipped-hosts", 200, "\"host-gen1\"");
    expect_body(l, "/recent-apps", 200, "\"recent-gen1/10.0.0.1\"");
    expect_body(l, "/consensus/status", 200, "\"Leader\":\"leader-gen1\"");
    expect_body(l, "/consensus/status", 200, "\"ShareDomainServices\":{\"dom-gen1\"");
    expect_body(l, "/consensus/leader", 200, "\"leader-gen1\"");
    expect_body(l, "/consensus/state", 200, "\"Leader-gen1\"");
    expect_body(l, "/leader-check", 200, "HTTP 200");
    expect_body(l, "/hostname", 200, "\"hostname-gen1\"");
    expect_body(l, "/debug/vars", 200, "{\"gen\":1}");
    expect_body(l, "/metrics", 200, "gen 1");
    expect_body(l, "/config/memcache", 200, "{\"gen\":1}");
}

/* Turns the loop until its heartbeat is at most 40 ms old. */
static void beat(struct loop *l)
{
    uint64_t t0 = clock_boot_ms();
    do {
        uv_run(loop_uv(l), UV_RUN_NOWAIT);
        assert_true(clock_boot_ms() - t0 < 5000);
    } while (clock_boot_ms() - loop_alive_boot_ms(l) > 40);
}

/* The handler hands the loop's heartbeat and the boot clock to the
 * decision: while the loop does not run, a check answers 500 once the last
 * heartbeat is older than the snapshot's bound. */
static void test_check_refuses_a_stalled_loop(void **state)
{
    struct loop *l = *state;
    stale_after_ms = 50;
    beat(l);
    expect_body(l, "/check/app/mysql/c1", 429, "\"Threshold exceeded\"");
    uint64_t t0 = clock_boot_ms();
    while (clock_boot_ms() - loop_alive_boot_ms(l) <= 60)
        assert_true(clock_boot_ms() - t0 < 5000);
    expect_body(
            l, "/check/app/mysql/c1", 500,
            "{\"StatusCode\":500,\"Value\":0,\"Threshold\":0,\"Message\":\"" CHECK_MSG_LOOP_STALLED
            "\"}");
    expect_body(l, "/check-if-exists/app/mysql/c1", 500, CHECK_MSG_LOOP_STALLED);
    beat(l);
    expect_body(l, "/check/app/mysql/c1", 429, "\"Threshold exceeded\"");
    stale_after_ms = 0;
}

static int setup(void **state)
{
    *state = loop_new();
    return *state == NULL;
}

static int teardown(void **state)
{
    loop_free(*state);
    events_shutdown();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_check_answers_from_what_it_read),
            cmocka_unit_test(test_other_handlers_answer_from_what_they_read),
            cmocka_unit_test(test_check_refuses_a_stalled_loop),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
