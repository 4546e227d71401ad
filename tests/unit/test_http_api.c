/* SPDX-License-Identifier: MIT */
/* The HTTP API's answers (docs/api.md), rendered from hand-built snapshots:
 * every endpoint's status and whole body, the check variants, the route
 * errors, the validation of control requests (before anything reaches the
 * loop) and the answers to parked control requests. */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/clock.h"
#include "core/hostport.h"
#include "core/jsonfmt.h"
#include "core/limits.h"
#include "core/token.h"
#include "core/xalloc.h"
#include "http/check_body.h"
#include "http/http_api.h"
#include "http/router.h"
#include "loop/loop.h"
#include "snap_build.h"
#include "snapshot/check.h"
#include "snapshot/events.h"
#include "snapshot/history.h"
#include "snapshot/snapshot.h"

#define FAR_MS   4102444800000ull /* 2100-01-01T00:00:00Z */
#define FAR_TEXT "2100-01-01T00:00:00Z"
#define NEVER    "0001-01-01T00:00:00Z"
#define MIN_MS   60000ull

static struct loop *test_loop;
static struct token_set *test_tokens; /* the published snapshot's */
static uint64_t built_ms;             /* wall clock when the current snapshot was built */

/* ---- snapshots ---- */

static struct snap_metric metric(const char *cluster, bool has, bool ok, double v, double thr,
                                 const char *err, uint64_t healthy_at_ms)
{
    struct snap_metric m = snap_build_metric(cluster, FRENO_METRIC_DEFAULT, has, ok, v, thr, err);
    m.last_healthy_at_ms = healthy_at_ms;
    return m;
}

static struct snap_service *services(size_t n, const char *const *pairs)
{
    struct snap_service *v = xcalloc(n ? n : 1, sizeof(*v));
    for (size_t i = 0; i < n; i++)
        v[i] = (struct snap_service){xstrdup(pairs[2 * i]), xstrdup(pairs[2 * i + 1])};
    return v;
}

/* Publishes @s and drops the caller's references to its parts. */
static void publish(struct snapshot *s)
{
    snapshot_publish(s);
    snap_clusters_unref(s->clusters);
    snap_apps_unref(s->apps);
    snap_hosts_unref(s->hosts);
    snap_recents_unref(s->recents);
    snap_text_unref(s->text);
    snap_leaders_unref(s->leader);
}

/* A leader with metrics, throttles, skipped hosts, recent apps and texts;
 * @token is the ControlToken (NULL: none). */
static void publish_full(const char *token, const char *broken_err)
{
    /* The snapshot that points at the old set is replaced below; no reader
     * runs meanwhile in this single-threaded test. */
    token_set_free(test_tokens);
    test_tokens = NULL;
    if (token != NULL) {
        test_tokens = token_set_new();
        token_set_add(test_tokens, TOKEN_DEFAULT_NAME, token);
        token_set_add(test_tokens, "ops", "0ps-secret");
    }
    built_ms = clock_wall_ms();
    struct snap_metric *mv = xcalloc(4, sizeof(*mv));
    mv[0] = metric("broken", true, false, 0, 1, broken_err, built_ms - 65500);
    mv[1] = metric("fresh", false, false, 0, 1, NULL, 0);
    mv[2] = metric("high", true, true, 2.5, 1, NULL, built_ms - 5500);
    mv[3] = metric("low", true, true, 0.2, 1, NULL, 0);
    struct snap_app *av = xcalloc(4, sizeof(*av));
    av[0] = (struct snap_app){xstrdup("abusing-app"), 0, 1};
    av[1] = (struct snap_app){xstrdup("expired"), built_ms - 1000, 1};
    av[2] = (struct snap_app){xstrdup("half"), FAR_MS, 0.5};
    av[3] = (struct snap_app){xstrdup("scoped/low"), FAR_MS, 1};
    struct snap_host *hv = xcalloc(3, sizeof(*hv));
    hv[0] = (struct snap_host){xstrdup("db-0"), 0};
    hv[1] = (struct snap_host){xstrdup("db-1"), FAR_MS};
    hv[2] = (struct snap_host){xstrdup("db-old"), built_ms - 1000};
    struct snap_recent *rv = xcalloc(2, sizeof(*rv));
    rv[0] = (struct snap_recent){xstrdup("\"a/10.0.0.1\""), built_ms - 10 * MIN_MS - 30000};
    rv[1] = (struct snap_recent){xstrdup("\"b/::1\""), built_ms - 90 * MIN_MS - 30000};
    static const char *const share[] = {"dom2", "db-9:8111"};
    static const char *const healthy[] = {"dom", "db-1:8111", "dom", "db-2:8111"};
    struct snap_leader l = {
            .is_leader = true,
            .healthy = true,
            .leader_id = xstrdup("db-1:8111"),
            .state = xstrdup("Leader"),
            .service_id = xstrdup("db-1:8111"),
            .domain = xstrdup("dom"),
            .share_domain = xstrdup("share"),
            .share_services = services(1, share),
            .share_services_len = 1,
            .domain_services = services(2, healthy),
            .domain_services_len = 2,
    };
    char *vars = xstrdup("{\"probes.total\":3}\n");
    char *prom = xstrdup("# TYPE freno_probes_total counter\nfreno_probes_total 3\n");
    struct snapshot s = {
            .built_at_ms = built_ms,
            .hostname = "db-1",
            .memcache_json = "{\"MemcacheServers\":[\"m:11211\"],\"MemcachePath\":\"freno\"}\n",
            .control_token = token,
            .tokens = test_tokens,
            .clusters = snap_build_clusters(mv, 4),
            .apps = snap_apps_new(av, 4),
            .hosts = snap_hosts_new(hv, 3),
            .recents = snap_recents_new(rv, 2),
            .text = snap_text_new(vars, strlen(vars), prom, strlen(prom)),
            .leader = snap_leaders_new(&l),
    };
    publish(&s);
}

/* A node that knows nothing yet: no parts, no hostname, no leader. */
static void publish_empty(void)
{
    struct snapshot s = {.built_at_ms = clock_wall_ms()};
    publish(&s);
}

/* ---- requests ---- */

struct ask {
    const char *method; /* NULL: GET */
    const char *path;
    const char *const *query;   /* key, value, ..., NULL */
    const char *const *headers; /* likewise */
    struct loop_cmd *park;
};

static const char *find_pair(const char *const *kv, const char *key, bool nocase)
{
    for (; kv != NULL && kv[0] != NULL; kv += 2)
        if ((nocase ? strcasecmp(kv[0], key) : strcmp(kv[0], key)) == 0)
            return kv[1];
    return NULL;
}

static const char *query_of(void *ctx, const char *key)
{
    return find_pair(((const struct ask *)ctx)->query, key, false);
}

static const char *header_of(void *ctx, const char *key)
{
    return find_pair(((const struct ask *)ctx)->headers, key, true);
}

static struct http_api_ctx api_ctx(void)
{
    return (struct http_api_ctx){.loop = test_loop, .cmd_timeout_ms = 5000, .cmd_queue_max = 64};
}

static void answer(const struct ask *a, struct http_resp *resp)
{
    struct http_api_ctx ctx = api_ctx();
    struct ask lookups = *a;
    struct http_req req = {
            .method = a->method ? a->method : "GET",
            .path = a->path,
            .peer = "10.0.0.9",
            .query = query_of,
            .header = header_of,
            .ctx = &lookups,
            .park = a->park,
    };
    http_api_handle(&ctx, &req, resp);
}

static void resp_done(struct http_resp *resp)
{
    if (resp->heap)
        free(resp->body);
    if (resp->release != NULL)
        resp->release(resp->release_arg);
}

static void check_resp(const char *what, struct http_resp *resp, int status, bool json,
                       const char *body)
{
    if (resp->status != status || resp->json != json || resp->park || resp->len != strlen(body) ||
        memcmp(resp->body, body, resp->len) != 0)
        fail_msg("%s: got %d json=%d park=%d [%.*s]; want %d json=%d [%s]", what, resp->status,
                 resp->json, resp->park, (int)resp->len, resp->body, status, json, body);
    resp_done(resp);
}

static void expect_ask(const struct ask *a, int status, bool json, const char *body)
{
    struct http_resp resp;
    answer(a, &resp);
    check_resp(a->path, &resp, status, json, body);
}

static void expect_get(const char *path, int status, bool json, const char *body)
{
    expect_ask(&(struct ask){.path = path}, status, json, body);
}

/* The general response {"StatusCode":N,"Message":"..."} for a GET of @path. */
static void expect_general(const char *path, int status, const char *message_json)
{
    char body[1024];
    snprintf(body, sizeof(body), "{\"StatusCode\":%d,\"Message\":%s}\n", status, message_json);
    expect_get(path, status, true, body);
}

/* ---- checks ---- */

static void test_check_bodies(void **state)
{
    (void)state;
    publish_full(NULL, "replication not running");
    expect_get("/check/app/mysql/low", 200, true,
               "{\"StatusCode\":200,\"Value\":0.2,\"Threshold\":1,\"Message\":\"\"}\n");
    expect_get("/check/app/mysql/broken", 500, true,
               "{\"StatusCode\":500,\"Value\":0,\"Threshold\":1,\"Message\":\"replication not "
               "running\"}\n");
    expect_get("/check/app/mysql/nope", 404, true,
               "{\"StatusCode\":404,\"Value\":0,\"Threshold\":0,\"Message\":\"No such metric\"}\n");
    expect_get("/check/app/mysql/fresh", 404, true,
               "{\"StatusCode\":404,\"Value\":0,\"Threshold\":0,\"Message\":\"No such metric\"}\n");
    expect_get("/check/app/redis/low", 404, true,
               "{\"StatusCode\":404,\"Value\":0,\"Threshold\":0,\"Message\":\"No such metric\"}\n");
    expect_get("/check/abusing-app/mysql/low", 417, true,
               "{\"StatusCode\":417,\"Value\":0,\"Threshold\":0,\"Message\":\"App denied\"}\n");
    expect_get("/check/scoped/mysql/low", 417, true,
               "{\"StatusCode\":417,\"Value\":0,\"Threshold\":0,\"Message\":\"App denied\"}\n");
    expect_get("/check/expired/mysql/low", 200, true,
               "{\"StatusCode\":200,\"Value\":0.2,\"Threshold\":1,\"Message\":\"\"}\n");
    expect_get("/check/app/mysql/high", 429, true,
               "{\"StatusCode\":429,\"Value\":2.5,\"Threshold\":1,\"Message\":\"Threshold "
               "exceeded\"}\n");
}

static void test_check_variants(void **state)
{
    (void)state;
    publish_full(NULL, "replication not running");
    expect_get("/check-if-exists/app/mysql/nope", 200, true,
               "{\"StatusCode\":200,\"Value\":0,\"Threshold\":0,\"Message\":\"No such metric\"}\n");
    expect_get("/check-if-exists/app/mysql/high", 429, true,
               "{\"StatusCode\":429,\"Value\":2.5,\"Threshold\":1,\"Message\":\"Threshold "
               "exceeded\"}\n");
    expect_get("/check-read/app/mysql/high/3", 200, true,
               "{\"StatusCode\":200,\"Value\":2.5,\"Threshold\":3,\"Message\":\"\"}\n");
    expect_get("/check-read/app/mysql/high/0.125", 429, true,
               "{\"StatusCode\":429,\"Value\":2.5,\"Threshold\":0.125,\"Message\":\"Threshold "
               "exceeded\"}\n");
    /* 0 or less keeps the configured threshold. */
    expect_get("/check-read/app/mysql/low/-1", 200, true,
               "{\"StatusCode\":200,\"Value\":0.2,\"Threshold\":1,\"Message\":\"\"}\n");
    expect_get("/check-read-if-exists/app/mysql/nope/3", 200, true,
               "{\"StatusCode\":200,\"Value\":0,\"Threshold\":0,\"Message\":\"No such metric\"}\n");
    expect_general("/check-read/app/mysql/high/abc", 500,
                   "\"check-read: threshold \\\"abc\\\" is not a number\"");
    expect_general("/check-read-if-exists/app/mysql/high/1x", 500,
                   "\"check-read: threshold \\\"1x\\\" is not a number\"");
}

/* A normal 429 opens the low-priority window of its metric: ?p=low is then
 * refused with 417, other metrics and normal checks are not affected. */
static void test_check_low_priority(void **state)
{
    (void)state;
    publish_full(NULL, "replication not running");
    static const char *const low[] = {"p", "low", NULL};
    expect_ask(&(struct ask){.path = "/check/app/mysql/low", .query = low}, 200, true,
               "{\"StatusCode\":200,\"Value\":0.2,\"Threshold\":1,\"Message\":\"\"}\n");
    expect_get("/check/app/mysql/high", 429, true,
               "{\"StatusCode\":429,\"Value\":2.5,\"Threshold\":1,\"Message\":\"Threshold "
               "exceeded\"}\n");
    expect_ask(&(struct ask){.path = "/check/other/mysql/high", .query = low}, 417, true,
               "{\"StatusCode\":417,\"Value\":0,\"Threshold\":0,\"Message\":\"App denied\"}\n");
    expect_ask(&(struct ask){.path = "/check/other/mysql/low", .query = low}, 200, true,
               "{\"StatusCode\":200,\"Value\":0.2,\"Threshold\":1,\"Message\":\"\"}\n");
}

/* The message is a JSON string with <, > and & escaped as Go does. */
static void test_check_message_escaping(void **state)
{
    (void)state;
    publish_full(NULL, "io \"stopped\" <x> & y");
    expect_get("/check/app/mysql/broken", 500, true,
               "{\"StatusCode\":500,\"Value\":0,\"Threshold\":1,\"Message\":\"io \\\"stopped\\\" "
               "\\u003cx\\u003e \\u0026 y\"}\n");
}

/* A passed lease stops the node vouching for its metrics and leading. */
static void test_check_passed_lease(void **state)
{
    (void)state;
    struct snap_metric *mv = xcalloc(1, sizeof(*mv));
    mv[0] = metric("high", true, true, 2.5, 1, NULL, 0);
    struct snap_leader l = {.is_leader = true,
                            .lease_until_boot_ms = 1,
                            .leader_id = xstrdup("me:1"),
                            .state = xstrdup("Leader")};
    struct snapshot s = {.clusters = snap_build_clusters(mv, 1), .leader = snap_leaders_new(&l)};
    publish(&s);
    expect_get(
            "/check/app/mysql/high", 500, true,
            "{\"StatusCode\":500,\"Value\":0,\"Threshold\":0,\"Message\":\"" CHECK_MSG_LEASE_EXPIRED
            "\"}\n");
    expect_get("/leader-check", 404, false, "\"HTTP 404\"\n");
}

/* ---- several metrics, reasons and Retry-After (docs/api.md#check-details) ---- */

/* A metric of @cluster named @name (FRENO_METRIC_DEFAULT for MetricQuery's)
 * whose value (or error) came from @host. */
static struct snap_metric metric_on(const char *cluster, const char *name, bool has, bool ok,
                                    double v, double thr, const char *err, const char *host)
{
    struct snap_metric m = snap_build_metric(cluster, name, has, ok, v, thr, err);
    m.host = host ? xstrdup(host) : NULL;
    m.last_healthy_at_ms = has && ok && v <= thr ? built_ms - 2000 : 0;
    return m;
}

/* Cluster "main" with three metrics and "solo" with one; @details is
 * CheckDetails. */
static void publish_metrics(bool details)
{
    built_ms = clock_wall_ms();
    struct snap_metric *mv = xcalloc(4, sizeof(*mv));
    mv[0] = metric_on("main", FRENO_METRIC_DEFAULT, true, true, 0.25, 1, NULL, "db-2:3306");
    mv[1] = metric_on("main", "hll", true, false, 0, 1e6, "query \"x\" failed\n", "db-1:3306");
    mv[2] = metric_on("main", "threads", true, true, 70, 64, NULL, "db-1:3306");
    mv[2].retry_after_s = 2;
    mv[3] = metric_on("solo", FRENO_METRIC_DEFAULT, true, true, 0.5, 1, NULL, "db-3:3306");
    struct snap_app *av = xcalloc(2, sizeof(*av));
    av[0] = (struct snap_app){xstrdup("arch"), built_ms + 90500, 1};
    av[1] = (struct snap_app){xstrdup("half/main"), 0, 0.5};
    struct snapshot s = {
            .built_at_ms = built_ms,
            .check_details = details,
            .clusters = snap_build_clusters(mv, 4),
            .apps = snap_apps_new(av, 2),
    };
    publish(&s);
}

/* GET and HEAD of @path answer @status with Retry-After @retry_s; the GET
 * body is @body. */
static void expect_answer(const char *path, const char *const *query, int status, unsigned retry_s,
                          const char *body)
{
    struct http_resp resp;
    answer(&(struct ask){.path = path, .query = query}, &resp);
    if (resp.retry_after_s != retry_s)
        fail_msg("%s: Retry-After %u, want %u", path, resp.retry_after_s, retry_s);
    check_resp(path, &resp, status, true, body);
    answer(&(struct ask){.method = "HEAD", .path = path, .query = query}, &resp);
    assert_int_equal(resp.status, status);
    assert_int_equal(resp.retry_after_s, retry_s);
    resp_done(&resp);
}

#define MAIN_METRICS(hll_status, threads_status)                                                   \
    "\"Metrics\":[{\"Metric\":\"default\",\"StatusCode\":200,\"Value\":0.25,\"Threshold\":1,"      \
    "\"Host\":\"db-2:3306\",\"Message\":\"\"},"                                                    \
    "{\"Metric\":\"hll\",\"StatusCode\":500,\"Value\":0,\"Threshold\":1000000,"                    \
    "\"Host\":\"db-1:3306\",\"Message\":\"query \\\"x\\\" failed?\"},"                             \
    "{\"Metric\":\"threads\",\"StatusCode\":429,\"Value\":70,\"Threshold\":64,"                    \
    "\"Host\":\"db-1:3306\",\"Message\":\"Threshold exceeded\"}]"

static void test_check_details_bodies(void **state)
{
    (void)state;
    publish_metrics(false);
    /* The worst metric (an error) decides; every metric is listed. */
    expect_answer(
            "/check/app/mysql/main", NULL, 500, 2,
            "{\"StatusCode\":500,\"Value\":0,\"Threshold\":1000000,"
            "\"Message\":\"query \\\"x\\\" failed\\u000a\",\"Metric\":\"hll\","
            "\"Reason\":\"mysql/main/hll: error on db-1:3306: query \\\"x\\\" failed?\"," MAIN_METRICS(
                    500, 429) "}\n");
    /* One metric alone. */
    static const char *const threads[] = {"metric", "threads", NULL};
    expect_answer(
            "/check/app/mysql/main", threads, 429, 2,
            "{\"StatusCode\":429,\"Value\":70,\"Threshold\":64,"
            "\"Message\":\"Threshold exceeded\",\"Metric\":\"threads\","
            "\"Reason\":\"mysql/main/threads: 70 on db-1:3306 is above the threshold 64\","
            "\"Metrics\":[{\"Metric\":\"threads\",\"StatusCode\":429,\"Value\":70,"
            "\"Threshold\":64,\"Host\":\"db-1:3306\",\"Message\":\"Threshold exceeded\"}]}\n");
    /* /check-read's threshold applies to the metric read. */
    expect_answer("/check-read/app/mysql/main/100", threads, 200, 0,
                  "{\"StatusCode\":200,\"Value\":70,\"Threshold\":100,\"Message\":\"\","
                  "\"Metric\":\"threads\",\"Reason\":\"\",\"Metrics\":[{\"Metric\":\"threads\","
                  "\"StatusCode\":200,\"Value\":70,\"Threshold\":100,\"Host\":\"db-1:3306\","
                  "\"Message\":\"\"}]}\n");
    static const char *const dflt[] = {"metric", "default", NULL};
    expect_answer("/check/app/mysql/main", dflt, 200, 0,
                  "{\"StatusCode\":200,\"Value\":0.25,\"Threshold\":1,\"Message\":\"\","
                  "\"Metric\":\"default\",\"Reason\":\"\",\"Metrics\":[{\"Metric\":\"default\","
                  "\"StatusCode\":200,\"Value\":0.25,\"Threshold\":1,\"Host\":\"db-2:3306\","
                  "\"Message\":\"\"}]}\n");
    static const char *const nope[] = {"metric", "no\"pe", NULL};
    expect_answer("/check/app/mysql/main", nope, 404, 0,
                  "{\"StatusCode\":404,\"Value\":0,\"Threshold\":0,\"Message\":\"No such metric\","
                  "\"Metric\":\"\",\"Reason\":\"mysql/main has no metric named no\\\"pe\","
                  "\"Metrics\":[]}\n");
    expect_answer("/check-if-exists/app/mysql/main", nope, 200, 0,
                  "{\"StatusCode\":200,\"Value\":0,\"Threshold\":0,\"Message\":\"No such metric\","
                  "\"Metric\":\"\",\"Reason\":\"mysql/main has no metric named no\\\"pe\","
                  "\"Metrics\":[]}\n");
    /* An operator throttle: its key, expiry and ratio; Retry-After is the
     * time it has left, rounded up (90.5 s: 91). */
    char ts[40], want[2048];
    clock_rfc3339(built_ms + 90500, ts, sizeof(ts));
    snprintf(
            want, sizeof(want),
            "{\"StatusCode\":417,\"Value\":0,\"Threshold\":0,\"Message\":\"App denied\","
            "\"Metric\":\"\",\"Reason\":\"app arch is throttled by an operator: arch, ratio 1, "
            "until %s\",\"Throttle\":{\"Key\":\"arch\",\"ExpireAt\":\"%s\",\"Ratio\":1}," MAIN_METRICS(
                    500, 429) "}\n",
            ts, ts);
    struct http_resp resp;
    answer(&(struct ask){.path = "/check/arch/mysql/main"}, &resp);
    assert_true(resp.retry_after_s == 91 || resp.retry_after_s == 90);
    check_resp("throttled", &resp, 417, true, want);
    /* A cluster of one metric answers as the original does... */
    expect_answer("/check/app/mysql/solo", NULL, 200, 0,
                  "{\"StatusCode\":200,\"Value\":0.5,\"Threshold\":1,\"Message\":\"\"}\n");
    expect_answer("/check/arch/mysql/solo", NULL, 417, 0,
                  "{\"StatusCode\":417,\"Value\":0,\"Threshold\":0,\"Message\":\"App denied\"}\n");
    expect_answer(
            "/check/app/mysql/nope", NULL, 404, 0,
            "{\"StatusCode\":404,\"Value\":0,\"Threshold\":0,\"Message\":\"No such metric\"}\n");
    /* ...unless CheckDetails asks every answer to explain itself. */
    publish_metrics(true);
    expect_answer("/check/app/mysql/solo", NULL, 200, 0,
                  "{\"StatusCode\":200,\"Value\":0.5,\"Threshold\":1,\"Message\":\"\","
                  "\"Metric\":\"default\",\"Reason\":\"\",\"Metrics\":[{\"Metric\":\"default\","
                  "\"StatusCode\":200,\"Value\":0.5,\"Threshold\":1,\"Host\":\"db-3:3306\","
                  "\"Message\":\"\"}]}\n");
    expect_answer("/check/app/mysql/nope", NULL, 404, 0,
                  "{\"StatusCode\":404,\"Value\":0,\"Threshold\":0,\"Message\":\"No such metric\","
                  "\"Metric\":\"\",\"Reason\":\"mysql/nope: no such cluster\",\"Metrics\":[]}\n");
    expect_answer("/check/app/redis/solo", NULL, 404, 0,
                  "{\"StatusCode\":404,\"Value\":0,\"Threshold\":0,\"Message\":\"No such metric\","
                  "\"Metric\":\"\",\"Reason\":\"store type redis is not mysql\",\"Metrics\":[]}\n");
    expect_answer("/check/half/mysql/solo", NULL, 200, 0,
                  "{\"StatusCode\":200,\"Value\":0.5,\"Threshold\":1,\"Message\":\"\","
                  "\"Metric\":\"default\",\"Reason\":\"\",\"Metrics\":[{\"Metric\":\"default\","
                  "\"StatusCode\":200,\"Value\":0.5,\"Threshold\":1,\"Host\":\"db-3:3306\","
                  "\"Message\":\"\"}]}\n");
}

/* A normal 429 opens the window; a low-priority check then names the
 * metric and waits out the window. A ratio throttle asks for a second. */
static void test_check_details_low_priority_and_ratio(void **state)
{
    (void)state;
    publish_metrics(false);
    static const char *const threads[] = {"metric", "threads", NULL};
    struct http_resp resp;
    answer(&(struct ask){.path = "/check/app/mysql/main", .query = threads}, &resp);
    assert_int_equal(resp.status, 429);
    resp_done(&resp);
    static const char *const low[] = {"p", "low", NULL};
    expect_answer("/check/app/mysql/main", low, 417, 1,
                  "{\"StatusCode\":417,\"Value\":0,\"Threshold\":0,\"Message\":\"App denied\","
                  "\"Metric\":\"threads\",\"Reason\":\"low priority: mysql/main/threads refused a "
                  "normal check within the last 1000 ms\"," MAIN_METRICS(500, 429) "}\n");
    /* Ratio 0.5: denied or not at random; a denial asks for a second. */
    for (int i = 0; i < 200; i++) {
        answer(&(struct ask){.path = "/check/half/mysql/main", .query = threads}, &resp);
        if (resp.status == 417) {
            assert_int_equal(resp.retry_after_s, 1);
            assert_non_null(strstr(resp.body, "\"Throttle\":{\"Key\":\"half/main\",\"ExpireAt\":"
                                              "\"" NEVER "\",\"Ratio\":0.5}"));
            assert_non_null(strstr(resp.body, "ratio 0.5, no expiry"));
            resp_done(&resp);
            return;
        }
        resp_done(&resp);
    }
    fail_msg("a ratio of 0.5 denied none of 200 checks");
}

/* The longest answer: nine metrics with the longest host names and error
 * texts full of characters to escape still fits, and is valid JSON. */
static void test_check_details_bound(void **state)
{
    (void)state;
    built_ms = clock_wall_ms();
    char host[HOSTPORT_TEXT_SIZE], err[256], name[FRENO_METRIC_NAME_MAX + 1];
    memset(host, 'h', sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    memset(err, '"', sizeof(err) - 1);
    err[sizeof(err) - 1] = '\0';
    struct snap_metric *mv = xcalloc(FRENO_METRICS_MAX, sizeof(*mv));
    mv[0] = metric_on("big", FRENO_METRIC_DEFAULT, true, false, 0, 1e300, err, host);
    for (size_t i = 1; i < FRENO_METRICS_MAX; i++) {
        memset(name, 'a' + (char)i, FRENO_METRIC_NAME_MAX);
        name[FRENO_METRIC_NAME_MAX] = '\0';
        mv[i] = metric_on("big", name, true, false, 0, -1.2345678901234567e-300, err, host);
    }
    char key[FRENO_NAME_MAX + 1];
    memset(key, '\\', FRENO_NAME_MAX);
    key[FRENO_NAME_MAX] = '\0';
    struct snap_app *av = xcalloc(1, sizeof(*av));
    av[0] = (struct snap_app){xstrdup(key), 0, 0.123456789012345};
    struct snapshot s = {.clusters = snap_build_clusters(mv, FRENO_METRICS_MAX),
                         .apps = snap_apps_new(av, 1)};
    publish(&s);
    const char *paths[] = {"/check/app/mysql/big", "/check/app/mysql/big"};
    char path[300];
    snprintf(path, sizeof(path), "/check/%s/mysql/big", key);
    paths[1] = path;
    for (int k = 0; k < 2; k++) {
        struct http_resp resp;
        for (int tries = 0; tries < 100; tries++) {
            answer(&(struct ask){.path = paths[k]}, &resp);
            if (k == 0 || resp.status == 417)
                break;
            resp_done(&resp);
        }
        if (resp.len < 8500)
            fail_msg("only %zu bytes", resp.len);
        assert_true(resp.len < CHECK_BODY_MAX);
        json_error_t je;
        json_t *j = json_loadb(resp.body, resp.len, 0, &je);
        if (j == NULL)
            fail_msg("not JSON: %s: %.*s", je.text, (int)resp.len, resp.body);
        assert_int_equal(json_array_size(json_object_get(j, "Metrics")), FRENO_METRICS_MAX);
        json_t *m = json_array_get(json_object_get(j, "Metrics"), FRENO_METRICS_MAX - 1);
        assert_string_equal(json_string_value(json_object_get(m, "Host")), host);
        assert_string_equal(json_string_value(json_object_get(m, "Message")), err);
        json_decref(j);
        resp_done(&resp);
    }
}

static void test_listings_with_metrics(void **state)
{
    (void)state;
    publish_metrics(false);
    expect_get("/aggregated-metrics", 200, true,
               "{\"mysql/main\":\"0.250000\",\"mysql/main/hll\":\"error: query \\\"x\\\" "
               "failed\\n\",\"mysql/main/threads\":\"70.000000\",\"mysql/solo\":\"0.500000\"}\n");
    char at[40], want[400];
    clock_rfc3339(built_ms - 2000, at, sizeof(at));
    snprintf(want, sizeof(want),
             "{\"mysql/main\":{\"LastHealthyAt\":\"%s\",\"SecondsSinceLastHealthy\":2},"
             "\"mysql/solo\":{\"LastHealthyAt\":\"%s\",\"SecondsSinceLastHealthy\":2}}\n",
             at, at);
    expect_get("/metrics-health", 200, true, want);
}

/* ---- listings ---- */

static void test_aggregated_metrics(void **state)
{
    (void)state;
    publish_full(NULL, "replication not running");
    static const char full[] = "{\"mysql/broken\":\"error: replication not running\","
                               "\"mysql/high\":\"2.500000\",\"mysql/low\":\"0.200000\"}\n";
    expect_get("/aggregated-metrics", 200, true, full);
    static const char *const brief[] = {"brief", "true", NULL};
    expect_ask(&(struct ask){.path = "/aggregated-metrics", .query = brief}, 200, true,
               "{\"mysql/broken\":\"error: replication not running\",\"mysql/high\":\"2.500\","
               "\"mysql/low\":\"0.200\"}\n");
    static const char *const not_brief[] = {"brief", "1", NULL};
    expect_ask(&(struct ask){.path = "/aggregated-metrics", .query = not_brief}, 200, true, full);
}

static void test_metrics_health(void **state)
{
    (void)state;
    publish_full(NULL, "replication not running");
    char broken_at[40], high_at[40], want[300];
    clock_rfc3339(built_ms - 65500, broken_at, sizeof(broken_at));
    clock_rfc3339(built_ms - 5500, high_at, sizeof(high_at));
    /* Whole seconds: 65.5 s and 5.5 s ago when built, answered well within
     * the half second that would change them. */
    snprintf(want, sizeof(want),
             "{\"mysql/broken\":{\"LastHealthyAt\":\"%s\",\"SecondsSinceLastHealthy\":65},"
             "\"mysql/high\":{\"LastHealthyAt\":\"%s\",\"SecondsSinceLastHealthy\":5}}\n",
             broken_at, high_at);
    expect_get("/metrics-health", 200, true, want);
}

static void test_throttled_apps_and_skipped_hosts(void **state)
{
    (void)state;
    publish_full(NULL, "replication not running");
    expect_get("/throttled-apps", 200, true,
               "{\"abusing-app\":{\"ExpireAt\":\"" NEVER "\",\"Ratio\":1},"
               "\"half\":{\"ExpireAt\":\"" FAR_TEXT "\",\"Ratio\":0.5},"
               "\"scoped/low\":{\"ExpireAt\":\"" FAR_TEXT "\",\"Ratio\":1}}\n");
    expect_get("/skipped-hosts", 200, true, "{\"db-0\":\"" NEVER "\",\"db-1\":\"" FAR_TEXT "\"}\n");
}

static void test_recent_apps(void **state)
{
    (void)state;
    publish_full(NULL, "replication not running");
    uint64_t a_s = (built_ms - 10 * MIN_MS - 30000) / 1000;
    uint64_t b_s = (built_ms - 90 * MIN_MS - 30000) / 1000;
    char all[300], recent[200];
    snprintf(all, sizeof(all),
             "{\"a/10.0.0.1\":{\"CheckedAtEpoch\":%" PRIu64 ",\"MinutesSinceChecked\":10},"
             "\"b/::1\":{\"CheckedAtEpoch\":%" PRIu64 ",\"MinutesSinceChecked\":90}}\n",
             a_s, b_s);
    snprintf(recent, sizeof(recent),
             "{\"a/10.0.0.1\":{\"CheckedAtEpoch\":%" PRIu64 ",\"MinutesSinceChecked\":10}}\n", a_s);
    expect_get("/recent-apps", 200, true, all);
    expect_get("/recent-apps/0", 200, true, all);
    expect_get("/recent-apps/-5", 200, true, all);
    expect_get("/recent-apps/90", 200, true, all);
    expect_get("/recent-apps/89", 200, true, recent);
    expect_get("/recent-apps/10", 200, true, recent);
    expect_get("/recent-apps/9", 200, true, "{}\n");
    expect_general("/recent-apps/x", 500, "\"recent-apps: minutes \\\"x\\\" is not an integer\"");
    expect_general("/recent-apps/1.5", 500,
                   "\"recent-apps: minutes \\\"1.5\\\" is not an integer\"");
}

/* Nothing published yet, or a node that knows nothing: empty listings. */
static void test_empty_snapshot(void **state)
{
    (void)state;
    publish_empty();
    expect_get("/aggregated-metrics", 200, true, "{}\n");
    expect_get("/metrics-health", 200, true, "{}\n");
    expect_get("/throttled-apps", 200, true, "{}\n");
    expect_get("/skipped-hosts", 200, true, "{}\n");
    expect_get("/recent-apps", 200, true, "{}\n");
    expect_get("/check/app/mysql/c1", 404, true,
               "{\"StatusCode\":404,\"Value\":0,\"Threshold\":0,\"Message\":\"No such metric\"}\n");
    expect_get("/debug/vars", 200, true, "{}\n");
    expect_get("/metrics", 200, false, "");
    expect_get("/config/memcache", 200, true, "{}\n");
    expect_get("/hostname", 500, false, "");
    expect_get("/leader-check", 404, false, "\"HTTP 404\"\n");
    expect_get("/consensus/leader", 500, false, "");
    expect_get("/raft/leader", 500, false, "");
    expect_get("/consensus/state", 200, true, "\"Unhealthy\"\n");
    expect_get("/raft/state", 200, true, "\"Unhealthy\"\n");
    expect_get("/consensus/status", 200, true,
               "{\"ServiceID\":\"\",\"Healthy\":false,\"IsLeader\":false,\"Leader\":\"\","
               "\"State\":\"Unhealthy\",\"Domain\":\"\",\"ShareDomain\":\"\","
               "\"ShareDomainServices\":{},\"ShareDomainServicesList\":[],"
               "\"HealthyDomainServicesList\":[]}\n");
}

/* ---- leadership, identity and texts ---- */

static void test_leadership_endpoints(void **state)
{
    (void)state;
    publish_full(NULL, "replication not running");
    expect_get("/leader-check", 200, false, "\"HTTP 200\"\n");
    expect_get("/consensus/leader", 200, true, "\"db-1:8111\"\n");
    expect_get("/raft/leader", 200, true, "\"db-1:8111\"\n");
    expect_get("/consensus/state", 200, true, "\"Leader\"\n");
    expect_get("/raft/state", 200, true, "\"Leader\"\n");
    expect_get("/consensus/status", 200, true,
               "{\"ServiceID\":\"db-1:8111\",\"Healthy\":true,\"IsLeader\":true,"
               "\"Leader\":\"db-1:8111\",\"State\":\"Leader\",\"Domain\":\"dom\","
               "\"ShareDomain\":\"share\",\"ShareDomainServices\":{\"dom2\":\"db-9:8111\"},"
               "\"ShareDomainServicesList\":[\"db-1:8111\",\"db-9:8111\"],"
               "\"HealthyDomainServicesList\":[\"db-1:8111\",\"db-2:8111\"]}\n");
}

static void test_identity_and_texts(void **state)
{
    (void)state;
    publish_full(NULL, "replication not running");
    expect_get("/hostname", 200, true, "\"db-1\"\n");
    expect_get("/config/memcache", 200, true,
               "{\"MemcacheServers\":[\"m:11211\"],\"MemcachePath\":\"freno\"}\n");
    expect_get("/debug/vars", 200, true, "{\"probes.total\":3}\n");
    expect_get("/debug/metrics", 200, true, "{\"probes.total\":3}\n");
    expect_get("/metrics", 200, false, "# TYPE freno_probes_total counter\nfreno_probes_total 3\n");
    /* The texts are served without a copy: the answer holds a reference. */
    struct http_resp resp;
    answer(&(struct ask){.path = "/metrics"}, &resp);
    assert_false(resp.heap);
    assert_non_null(resp.release);
    resp_done(&resp);
}

static void test_lb_check_and_help(void **state)
{
    (void)state;
    publish_full(NULL, "replication not running");
    expect_general("/lb-check", 200, "\"OK\"");
    expect_general("/_ping", 200, "\"OK\"");
    expect_general("/status", 200, "\"OK\"");
    expect_general("/lb-check/", 200, "\"OK\"");
    char want[4096];
    size_t o = 0;
    want[o++] = '[';
    for (const char *const *p = router_patterns(); *p != NULL; p++)
        o += (size_t)snprintf(want + o, sizeof(want) - o, "%s\"%s\"", o > 1 ? "," : "", *p);
    snprintf(want + o, sizeof(want) - o, "]\n");
    assert_non_null(strstr(want, "[\"/lb-check\",\"/_ping\","));
    assert_non_null(strstr(want, ",\"/metrics\","));
    assert_non_null(strstr(
            want, ",\"/dashboard\",\"/metrics-history\",\"/cluster-metrics\",\"/audit-log\"]\n"));
    assert_null(strstr(want, "/config/memcache"));
    expect_get("/help", 200, true, want);
}

/* ---- dashboard ---- */

static void answer_with_history(const struct ask *a, struct history *h, struct http_resp *resp)
{
    struct http_api_ctx ctx = api_ctx();
    ctx.history = h;
    struct ask lookups = *a;
    struct http_req req = {
            .method = "GET",
            .path = a->path,
            .peer = "10.0.0.9",
            .query = query_of,
            .header = header_of,
            .ctx = &lookups,
    };
    http_api_handle(&ctx, &req, resp);
}

/* The page, its script and its style: compiled in, typed, with the policy
 * that forbids loading anything from elsewhere; nothing in them names
 * another origin. */
static void test_dashboard_assets(void **state)
{
    (void)state;
    static const struct {
        const char *path, *type, *marker;
    } assets[] = {
            {"/dashboard", "text/html; charset=utf-8", "<script src=\"/dashboard/app.js\""},
            {"/dashboard/", "text/html; charset=utf-8", "href=\"/dashboard/style.css\""},
            {"/dashboard/app.js", "text/javascript; charset=utf-8", "textContent"},
            {"/dashboard/style.css", "text/css; charset=utf-8", "svg.chart"},
    };
    for (size_t i = 0; i < sizeof(assets) / sizeof(assets[0]); i++) {
        struct http_resp resp;
        answer(&(struct ask){.path = assets[i].path}, &resp);
        assert_int_equal(resp.status, 200);
        assert_string_equal(resp.content_type, assets[i].type);
        assert_true(resp.csp);
        assert_int_equal(resp.len, strlen(resp.body));
        if (strstr(resp.body, assets[i].marker) == NULL)
            fail_msg("%s lacks %s", assets[i].path, assets[i].marker);
        /* The one absolute URL is the SVG namespace, which loads nothing. */
        const char *u = resp.body;
        while ((u = strstr(u, "http")) != NULL) {
            if (strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0)
                assert_int_equal(strncmp(u, "http://www.w3.org/2000/svg\"", 27), 0);
            u += 4;
        }
        /* Data reaches the page as text only. */
        assert_null(strstr(resp.body, "innerHTML"));
        assert_null(strstr(resp.body, "insertAdjacentHTML"));
        assert_null(strstr(resp.body, "document.write"));
        resp_done(&resp);
    }
    assert_null(strstr(HTTP_DASHBOARD_CSP, "unsafe"));
    assert_non_null(strstr(HTTP_DASHBOARD_CSP, "default-src 'none'"));
}

static void test_cluster_metrics(void **state)
{
    (void)state;
    publish_full(NULL, "replication not running");
    struct http_resp resp;
    answer(&(struct ask){.path = "/cluster-metrics"}, &resp);
    assert_int_equal(resp.status, 200);
    assert_true(resp.json);
    assert_true(resp.csp);
    json_error_t e;
    json_t *j = json_loadb(resp.body, resp.len, 0, &e);
    assert_non_null(j);
    resp_done(&resp);
    assert_true(json_integer_value(json_object_get(j, "Now")) >= (json_int_t)built_ms);
    json_t *cs = json_object_get(j, "Clusters");
    assert_int_equal(json_array_size(cs), 4);
    const char *want_names[] = {"broken", "fresh", "high", "low"};
    for (size_t i = 0; i < 4; i++) {
        json_t *c = json_array_get(cs, i);
        assert_string_equal(json_string_value(json_object_get(c, "Name")), want_names[i]);
        json_t *m = json_array_get(json_object_get(c, "Metrics"), 0);
        assert_string_equal(json_string_value(json_object_get(m, "Metric")), "default");
        assert_true(json_number_value(json_object_get(m, "Threshold")) == 1);
        assert_true(json_is_array(json_object_get(m, "Hosts")));
    }
    json_t *broken = json_array_get(json_object_get(json_array_get(cs, 0), "Metrics"), 0);
    assert_true(json_is_true(json_object_get(broken, "HasValue")));
    assert_true(json_is_false(json_object_get(broken, "Ok")));
    assert_true(json_is_null(json_object_get(broken, "Value")));
    assert_string_equal(json_string_value(json_object_get(broken, "Error")),
                        "replication not running");
    json_t *high = json_array_get(json_object_get(json_array_get(cs, 2), "Metrics"), 0);
    assert_string_equal(json_string_value(json_object_get(high, "Name")), "mysql/high");
    assert_true(json_number_value(json_object_get(high, "Value")) == 2.5);
    json_t *fresh = json_array_get(json_object_get(json_array_get(cs, 1), "Metrics"), 0);
    assert_true(json_is_false(json_object_get(fresh, "HasValue")));
    json_decref(j);

    answer(&(struct ask){.path = "/cluster-metrics",
                         .query = (const char *const[]){"cluster", "low", NULL}},
           &resp);
    j = json_loadb(resp.body, resp.len, 0, &e);
    resp_done(&resp);
    assert_int_equal(json_array_size(json_object_get(j, "Clusters")), 1);
    json_decref(j);
    /* The overview leaves the hosts out. */
    answer(&(struct ask){.path = "/cluster-metrics",
                         .query = (const char *const[]){"hosts", "false", NULL}},
           &resp);
    j = json_loadb(resp.body, resp.len, 0, &e);
    resp_done(&resp);
    json_t *m0 = json_array_get(
            json_object_get(json_array_get(json_object_get(j, "Clusters"), 0), "Metrics"), 0);
    assert_non_null(json_object_get(m0, "Threshold"));
    assert_null(json_object_get(m0, "Hosts"));
    json_decref(j);
    expect_ask(
            &(struct ask){.path = "/cluster-metrics",
                          .query = (const char *const[]){"cluster", "no\"such", NULL}},
            404, true,
            "{\"StatusCode\":404,\"Message\":\"cluster-metrics: no cluster \\\"no\\\\\\\"such\\\"\"}\n");
    expect_ask(
            &(struct ask){.path = "/cluster-metrics",
                          .query = (const char *const[]){"cluster", "a\nb", NULL}},
            400, true,
            "{\"StatusCode\":400,\"Message\":\"cluster-metrics: cluster holds a control character or bytes that are not UTF-8\"}\n");
}

static void test_metrics_history_endpoint(void **state)
{
    (void)state;
    struct history *h = history_new();
    struct history_sample s = {.metric = "default",
                               .name = "mysql/c1",
                               .threshold = 1,
                               .has_value = true,
                               .value = 0.5};
    history_record(h, "c1", &s, 1, 1700000000);
    s.value = 0.75;
    history_record(h, "c1", &s, 1, 1700000001);
    struct http_resp resp;
    answer_with_history(&(struct ask){.path = "/metrics-history"}, h, &resp);
    check_resp("metrics-history", &resp, 200, true,
               "{\"IntervalSeconds\":1,\"Points\":900,\"Clusters\":{\"c1\":{\"Start\":1700000000,"
               "\"Metrics\":{\"default\":{\"Name\":\"mysql/c1\",\"Threshold\":1,\"Values\":[0.5,"
               "0.75]}}}}}\n");
    answer_with_history(&(struct ask){.path = "/metrics-history",
                                      .query = (const char *const[]){"cluster", "c1", "since",
                                                                     "1700000000", NULL}},
                        h, &resp);
    assert_true(resp.csp);
    check_resp("metrics-history since", &resp, 200, true,
               "{\"IntervalSeconds\":1,\"Points\":900,\"Clusters\":{\"c1\":{\"Start\":1700000001,"
               "\"Metrics\":{\"default\":{\"Name\":\"mysql/c1\",\"Threshold\":1,\"Values\":[0.75]}"
               "}}}}\n");
    answer_with_history(&(struct ask){.path = "/metrics-history",
                                      .query = (const char *const[]){"cluster", "c2", NULL}},
                        h, &resp);
    check_resp("metrics-history unknown", &resp, 404, true,
               "{\"StatusCode\":404,\"Message\":\"metrics-history: no cluster \\\"c2\\\"\"}\n");
    static const char *const bad[] = {"x", "-1", "1.5", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        answer_with_history(&(struct ask){.path = "/metrics-history",
                                          .query = (const char *const[]){"since", bad[i], NULL}},
                            h, &resp);
        assert_int_equal(resp.status, 500);
        assert_non_null(strstr(resp.body, "metrics-history: since"));
        resp_done(&resp);
    }
    history_free(h);
    expect_get("/metrics-history", 404, true,
               "{\"StatusCode\":404,\"Message\":\"metrics-history: no history kept here\"}\n");
}

static void test_route_errors(void **state)
{
    (void)state;
    publish_full(NULL, "replication not running");
    expect_get("/nope", 404, false, "404 page not found\n");
    expect_get("/check/app/mysql", 404, false, "404 page not found\n");
    expect_get("/check/app/mysql/low/extra", 404, false, "404 page not found\n");
    expect_ask(&(struct ask){.method = "POST", .path = "/lb-check"}, 405, false,
               "Method Not Allowed\n");
    expect_ask(&(struct ask){.method = "HEAD", .path = "/config/memcache"}, 405, false,
               "Method Not Allowed\n");
    char *long_path = xmalloc(ROUTE_PATH_MAX + 2);
    long_path[0] = '/';
    memset(long_path + 1, 'a', ROUTE_PATH_MAX);
    long_path[ROUTE_PATH_MAX + 1] = '\0';
    expect_get(long_path, 414, false, "414 URI Too Long\n");
    long_path[ROUTE_PATH_MAX] = '\0'; /* exactly the bound: routed */
    expect_get(long_path, 404, false, "404 page not found\n");
    free(long_path);
}

/* ---- control requests ---- */

/* Asks @path as a control request and expects it parked with @want. */
static void expect_parked(const char *path, const char *const *query, const char *const *headers,
                          const struct loop_cmd *want)
{
    struct loop_cmd cmd;
    memset(&cmd, 0x5a, sizeof(cmd));
    struct http_resp resp;
    answer(&(struct ask){.path = path, .query = query, .headers = headers, .park = &cmd}, &resp);
    if (!resp.park)
        fail_msg("%s: not parked: %d [%.*s]", path, resp.status, (int)resp.len, resp.body);
    assert_false(resp.heap);
    assert_int_equal(cmd.kind, want->kind);
    assert_string_equal(cmd.name, want->name);
    assert_int_equal(cmd.has_ttl, want->has_ttl);
    assert_int_equal(cmd.ttl_min, want->ttl_min);
    assert_int_equal(cmd.has_ratio, want->has_ratio);
    assert_true(cmd.ratio == want->ratio);
    assert_int_equal(cmd.status, 0);
    assert_string_equal(cmd.msg, "");
}

/* Asks @path as a control request and expects the general response. */
static void expect_refused(const char *path, const char *const *query, const char *const *headers,
                           int status, const char *message_json)
{
    struct loop_cmd cmd = {0};
    char body[1024];
    snprintf(body, sizeof(body), "{\"StatusCode\":%d,\"Message\":%s}\n", status, message_json);
    expect_ask(&(struct ask){.path = path, .query = query, .headers = headers, .park = &cmd},
               status, true, body);
}

static void test_control_requests_parked(void **state)
{
    (void)state;
    publish_full(NULL, "replication not running");
    static const char *const store[] = {"store_name", "main", NULL};
    expect_parked("/throttle-app/a", NULL, NULL,
                  &(struct loop_cmd){.kind = LOOP_CMD_THROTTLE_APP, .name = "a"});
    expect_parked("/throttle-app/a/ttl/10/ratio/0.25", store, NULL,
                  &(struct loop_cmd){.kind = LOOP_CMD_THROTTLE_APP,
                                     .name = "a/main",
                                     .has_ttl = true,
                                     .ttl_min = 10,
                                     .has_ratio = true,
                                     .ratio = 0.25});
    expect_parked(
            "/throttle-app/a/ratio/1", NULL, NULL,
            &(struct loop_cmd){
                    .kind = LOOP_CMD_THROTTLE_APP, .name = "a", .has_ratio = true, .ratio = 1});
    expect_parked("/throttle-app/a/ttl/0", NULL, NULL,
                  &(struct loop_cmd){.kind = LOOP_CMD_THROTTLE_APP, .name = "a", .has_ttl = true});
    expect_parked("/unthrottle-app/a", store, NULL,
                  &(struct loop_cmd){.kind = LOOP_CMD_UNTHROTTLE_APP, .name = "a/main"});
    /* store_name means nothing to host requests. */
    expect_parked(
            "/skip-host/db-7/ttl/30", store, NULL,
            &(struct loop_cmd){
                    .kind = LOOP_CMD_SKIP_HOST, .name = "db-7", .has_ttl = true, .ttl_min = 30});
    expect_parked("/recover-host/db-7", store, NULL,
                  &(struct loop_cmd){.kind = LOOP_CMD_RECOVER_HOST, .name = "db-7"});
    /* Without a place to park, control requests are refused. */
    expect_general("/throttle-app/a", 500, "\"control request: not available here\"");
}

static void test_control_bad_options(void **state)
{
    (void)state;
    publish_full(NULL, "replication not running");
    expect_refused("/throttle-app/a/ttl/x", NULL, NULL, 500,
                   "\"throttle-app: ttl \\\"x\\\" is not an integer number of minutes\"");
    expect_refused("/skip-host/h/ttl/1.5", NULL, NULL, 500,
                   "\"skip-host: ttl \\\"1.5\\\" is not an integer number of minutes\"");
    expect_refused("/throttle-app/a/ttl/-3", NULL, NULL, 500, "\"throttle-app: negative ttl -3\"");
    expect_refused("/skip-host/h/ttl/-1", NULL, NULL, 500, "\"skip-host: negative ttl -1\"");
    expect_refused("/throttle-app/a/ratio/x", NULL, NULL, 500,
                   "\"throttle-app: ratio \\\"x\\\" is not a number\"");
    expect_refused("/throttle-app/a/ttl/5/ratio/nan", NULL, NULL, 500,
                   "\"throttle-app: ratio \\\"nan\\\" is not a number\"");
    expect_refused("/throttle-app/a/ratio/7", NULL, NULL, 500,
                   "\"throttle-app: ratio must be in [0..1] range; got 7\"");
    expect_refused("/throttle-app/a/ratio/-0.5", NULL, NULL, 500,
                   "\"throttle-app: ratio must be in [0..1] range; got -0.5\"");
    /* An expiry past 9999-12-31 would not print as RFC 3339 nor fit the
     * backend's DATETIME; a day short of it is fine for years to come. */
    expect_refused("/throttle-app/a/ttl/99999999999", NULL, NULL, 500,
                   "\"throttle-app: ttl 99999999999 minutes ends after 9999-12-31\"");
    expect_refused("/skip-host/h/ttl/9223372036854775807", NULL, NULL, 500,
                   "\"skip-host: ttl 9223372036854775807 minutes ends after 9999-12-31\"");
    expect_parked("/skip-host/h/ttl/4000000000", NULL, NULL,
                  &(struct loop_cmd){.kind = LOOP_CMD_SKIP_HOST,
                                     .name = "h",
                                     .has_ttl = true,
                                     .ttl_min = 4000000000});
    /* store_name is held to the path's rule. */
    static const char *const nl[] = {"store_name", "a\nb", NULL};
    expect_refused(
            "/throttle-app/a", nl, NULL, 400,
            "\"throttle-app: store_name holds a control character or bytes that are not UTF-8\"");
    static const char *const bad_utf8[] = {"store_name", "a\xff", NULL};
    expect_refused(
            "/unthrottle-app/a", bad_utf8, NULL, 400,
            "\"unthrottle-app: store_name holds a control character or bytes that are not UTF-8\"");
    /* The ttl is judged before the ratio; a quote in the value stays quoted. */
    expect_refused("/throttle-app/a/ttl/\"q/ratio/9", NULL, NULL, 500,
                   "\"throttle-app: ttl \\\"\\\\\\\"q\\\" is not an integer number of minutes\"");
}

static void test_control_name_bound(void **state)
{
    (void)state;
    publish_full(NULL, "replication not running");
    char path[400], name[200];
    memset(name, 'n', 128);
    name[128] = '\0';
    snprintf(path, sizeof(path), "/throttle-app/%s", name);
    struct loop_cmd want = {.kind = LOOP_CMD_THROTTLE_APP};
    memcpy(want.name, name, 129);
    expect_parked(path, NULL, NULL, &want);
    snprintf(path, sizeof(path), "/skip-host/%s", name);
    want.kind = LOOP_CMD_SKIP_HOST;
    expect_parked(path, NULL, NULL, &want);

    name[128] = 'n';
    name[129] = '\0';
    snprintf(path, sizeof(path), "/throttle-app/%s", name);
    expect_refused(path, NULL, NULL, 500,
                   "\"throttle-app: name of 129 bytes is longer than the 128 bytes the backend "
                   "can store\"");
    snprintf(path, sizeof(path), "/recover-host/%s", name);
    expect_refused(path, NULL, NULL, 500,
                   "\"recover-host: name of 129 bytes is longer than the 128 bytes the backend "
                   "can store\"");
    /* With store_name the key is app/store: 120 + 1 + 8 bytes. */
    name[120] = '\0';
    snprintf(path, sizeof(path), "/unthrottle-app/%s", name);
    static const char *const store[] = {"store_name", "cluster8", NULL};
    expect_refused(path, store, NULL, 500,
                   "\"unthrottle-app: name of 129 bytes is longer than the 128 bytes the backend "
                   "can store\"");
    /* Far past the command's buffer: still the byte count, not a cut name. */
    char *huge = xmalloc(1100);
    memcpy(huge, "/skip-host/", 11);
    memset(huge + 11, 'h', 1000);
    huge[1011] = '\0';
    expect_refused(huge, NULL, NULL, 500,
                   "\"skip-host: name of 1000 bytes is longer than the 128 bytes the backend can "
                   "store\"");
    free(huge);
}

static void test_control_token(void **state)
{
    (void)state;
    publish_full("s3cret", "replication not running");
    static const char *const bearer[] = {"Authorization", "Bearer s3cret", NULL};
    static const char *const x_token[] = {"X-Freno-Token", "s3cret", NULL};
    static const char *const wrong[] = {"Authorization", "Bearer s3creT", NULL};
    static const char *const prefix[] = {"X-Freno-Token", "s3cre", NULL};
    static const char *const longer[] = {"X-Freno-Token", "s3cret!", NULL};
    static const char *const basic[] = {"Authorization", "Basic s3cret", NULL};
    /* The bearer form is looked at first. */
    static const char *const both[] = {"Authorization", "Bearer nope", "X-Freno-Token", "s3cret",
                                       NULL};
    static const char denied[] = "\"control request: missing or wrong token\"";
    struct loop_cmd want = {.kind = LOOP_CMD_THROTTLE_APP, .name = "a"};
    expect_refused("/throttle-app/a", NULL, NULL, 401, denied);
    expect_refused("/throttle-app/a", NULL, wrong, 401, denied);
    expect_refused("/throttle-app/a", NULL, prefix, 401, denied);
    expect_refused("/throttle-app/a", NULL, longer, 401, denied);
    expect_refused("/throttle-app/a", NULL, basic, 401, denied);
    expect_refused("/throttle-app/a", NULL, both, 401, denied);
    /* The token is checked before anything else. */
    expect_refused("/throttle-app/a/ttl/x", NULL, NULL, 401, denied);
    expect_refused("/recover-host/h", NULL, NULL, 401, denied);
    expect_parked("/throttle-app/a", NULL, bearer, &want);
    expect_parked("/throttle-app/a", NULL, x_token, &want);
    /* Reads and checks need no token. */
    expect_general("/lb-check", 200, "\"OK\"");
    expect_get("/check/app/mysql/low", 200, true,
               "{\"StatusCode\":200,\"Value\":0.2,\"Threshold\":1,\"Message\":\"\"}\n");
}

/* Named tokens: the command carries the token's name, the client and the
 * parameters as sent, for the audit trail. */
static void test_named_tokens_audit(void **state)
{
    (void)state;
    publish_full("s3cret", "replication not running");
    static const char *const ops[] = {"Authorization", "Bearer 0ps-secret", "X-Forwarded-For",
                                      "203.0.113.7, 10.0.0.1", NULL};
    static const char *const legacy[] = {"X-Freno-Token", "s3cret", NULL};
    static const char *const store[] = {"store_name", "main", NULL};
    struct loop_cmd cmd;
    struct http_resp resp;
    memset(&cmd, 0, sizeof(cmd));
    answer(&(struct ask){.path = "/throttle-app/etl/ttl/30/ratio/0.5",
                         .query = store,
                         .headers = ops,
                         .park = &cmd},
           &resp);
    assert_true(resp.park);
    assert_string_equal(cmd.audit.who, "ops");
    assert_string_equal(cmd.audit.peer, "10.0.0.9");
    assert_string_equal(cmd.audit.forwarded, "203.0.113.7, 10.0.0.1");
    assert_string_equal(cmd.audit.what, "throttle-app");
    assert_string_equal(
            cmd.audit.params,
            "{\"app\":\"etl\",\"store_name\":\"main\",\"ttl\":\"30\",\"ratio\":\"0.5\"}");
    memset(&cmd, 0, sizeof(cmd));
    answer(&(struct ask){.path = "/skip-host/db-1", .headers = legacy, .park = &cmd}, &resp);
    assert_true(resp.park);
    assert_string_equal(cmd.audit.who, TOKEN_DEFAULT_NAME);
    assert_string_equal(cmd.audit.forwarded, "-");
    /* A secret of one token is not the prefix or the name of another. */
    static const char *const name_as_secret[] = {"X-Freno-Token", "ops", NULL};
    expect_refused("/skip-host/db-1", NULL, name_as_secret, 401,
                   "\"control request: missing or wrong token\"");
}

static void publish_audit(size_t n)
{
    struct audit_record *v = xcalloc(n, sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        v[i].at_ms = 1700000000000ull - i * 1000;
        v[i].status = 200;
        snprintf(v[i].who, sizeof(v[i].who), "ops");
        snprintf(v[i].peer, sizeof(v[i].peer), "10.0.0.%zu", i);
        snprintf(v[i].forwarded, sizeof(v[i].forwarded), "-");
        snprintf(v[i].what, sizeof(v[i].what), "skip-host");
        snprintf(v[i].params, sizeof(v[i].params), "{\"hostName\":\"h%zu\"}", i);
        snprintf(v[i].message, sizeof(v[i].message), "OK");
    }
    struct snapshot s = {.built_at_ms = clock_wall_ms(), .audit = snap_audit_new(v, n)};
    snapshot_publish(&s);
    snap_audit_unref(s.audit);
}

static void test_audit_log_endpoint(void **state)
{
    (void)state;
    publish_audit(3);
    static const char *const one[] = {"limit", "1", NULL};
    struct http_resp resp;
    answer(&(struct ask){.path = "/audit-log", .query = one}, &resp);
    check_resp("/audit-log?limit=1", &resp, 200, true,
               "[{\"At\":\"2023-11-14T22:13:20Z\",\"Who\":\"ops\",\"Peer\":\"10.0.0.0\","
               "\"Forwarded\":\"-\",\"What\":\"skip-host\",\"Params\":{\"hostName\":\"h0\"},"
               "\"Status\":200,\"Message\":\"OK\"}]\n");
    answer(&(struct ask){.path = "/audit-log"}, &resp);
    assert_int_equal(resp.status, 200);
    json_t *j = json_loadb(resp.body, resp.len, 0, NULL);
    assert_int_equal(json_array_size(j), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 2), "Peer")),
                        "10.0.0.2");
    json_decref(j);
    resp_done(&resp);
    static const char *const zero[] = {"limit", "0", NULL};
    static const char *const over[] = {"limit", "1001", NULL};
    static const char *const text[] = {"limit", "ten", NULL};
    expect_refused("/audit-log", zero, NULL, 400,
                   "\"audit-log: limit \\\"0\\\" is not an integer in 1..1000\"");
    expect_refused("/audit-log", over, NULL, 400,
                   "\"audit-log: limit \\\"1001\\\" is not an integer in 1..1000\"");
    expect_refused("/audit-log", text, NULL, 400,
                   "\"audit-log: limit \\\"ten\\\" is not an integer in 1..1000\"");
    /* With tokens, the trail (who acted from where) needs one. */
    publish_full("s3cret", "replication not running");
    expect_refused("/audit-log", NULL, NULL, 401, "\"audit-log: missing or wrong token\"");
}

/* ---- answers to parked control requests ---- */

static void expect_control_answer(enum loop_cmd_kind kind, int submit_rc,
                                  enum loop_cmd_outcome outcome, int cmd_status,
                                  const char *cmd_msg, int status, unsigned retry_after_s,
                                  const char *message_json)
{
    struct http_api_ctx ctx = api_ctx();
    struct loop_cmd cmd = {.kind = kind, .status = cmd_status};
    snprintf(cmd.msg, sizeof(cmd.msg), "%s", cmd_msg);
    struct http_resp resp;
    memset(&resp, 0x5a, sizeof(resp));
    http_api_control_answer(&ctx, &cmd, submit_rc, outcome, &resp);
    assert_int_equal(resp.retry_after_s, retry_after_s);
    assert_null(resp.release);
    char body[1024];
    snprintf(body, sizeof(body), "{\"StatusCode\":%d,\"Message\":%s}\n", status, message_json);
    check_resp("control answer", &resp, status, true, body);
}

static void test_control_answers(void **state)
{
    (void)state;
    expect_control_answer(LOOP_CMD_THROTTLE_APP, 0, LOOP_CMD_ANSWERED, 200, "", 200, 0, "\"OK\"");
    expect_control_answer(LOOP_CMD_SKIP_HOST, 0, LOOP_CMD_ANSWERED, 500, "not leader", 500, 0,
                          "\"not leader\"");
    expect_control_answer(LOOP_CMD_SKIP_HOST, 0, LOOP_CMD_ANSWERED, 0, "odd", 500, 0, "\"odd\"");
    expect_control_answer(LOOP_CMD_UNTHROTTLE_APP, -EAGAIN, LOOP_CMD_PENDING, 0, "", 503, 5,
                          "\"unthrottle-app: the control queue is full (64 commands waiting); "
                          "not applied, retry later\"");
    expect_control_answer(LOOP_CMD_RECOVER_HOST, -ESHUTDOWN, LOOP_CMD_PENDING, 0, "", 503, 0,
                          "\"shutting down\"");
    expect_control_answer(LOOP_CMD_RECOVER_HOST, 0, LOOP_CMD_SHUT_DOWN, 0, "", 503, 0,
                          "\"shutting down\"");
    expect_control_answer(LOOP_CMD_THROTTLE_APP, 0, LOOP_CMD_EXPIRED_QUEUED, 0, "", 503, 5,
                          "\"throttle-app: timed out after 5000 ms waiting in the control queue; "
                          "not applied, retry later\"");
    expect_control_answer(LOOP_CMD_SKIP_HOST, 0, LOOP_CMD_EXPIRED_RUNNING, 0, "", 500, 0,
                          "\"skip-host: timed out after 5000 ms waiting for the command to be "
                          "applied; the outcome is unknown: it may or may not be applied\"");
    expect_control_answer(LOOP_CMD_SKIP_HOST, 0, LOOP_CMD_PENDING, 0, "", 500, 0,
                          "\"control request: no answer\"");
}

static int setup(void **state)
{
    (void)state;
    test_loop = loop_new();
    snapshot_init();
    return test_loop == NULL;
}

static int teardown(void **state)
{
    (void)state;
    snapshot_shutdown();
    token_set_free(test_tokens);
    loop_free(test_loop);
    events_shutdown();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_check_bodies),
            cmocka_unit_test(test_check_variants),
            cmocka_unit_test(test_check_low_priority),
            cmocka_unit_test(test_check_message_escaping),
            cmocka_unit_test(test_check_passed_lease),
            cmocka_unit_test(test_check_details_bodies),
            cmocka_unit_test(test_check_details_low_priority_and_ratio),
            cmocka_unit_test(test_check_details_bound),
            cmocka_unit_test(test_listings_with_metrics),
            cmocka_unit_test(test_aggregated_metrics),
            cmocka_unit_test(test_metrics_health),
            cmocka_unit_test(test_throttled_apps_and_skipped_hosts),
            cmocka_unit_test(test_recent_apps),
            cmocka_unit_test(test_empty_snapshot),
            cmocka_unit_test(test_leadership_endpoints),
            cmocka_unit_test(test_identity_and_texts),
            cmocka_unit_test(test_lb_check_and_help),
            cmocka_unit_test(test_dashboard_assets),
            cmocka_unit_test(test_cluster_metrics),
            cmocka_unit_test(test_metrics_history_endpoint),
            cmocka_unit_test(test_route_errors),
            cmocka_unit_test(test_control_requests_parked),
            cmocka_unit_test(test_control_bad_options),
            cmocka_unit_test(test_control_name_bound),
            cmocka_unit_test(test_control_token),
            cmocka_unit_test(test_named_tokens_audit),
            cmocka_unit_test(test_audit_log_endpoint),
            cmocka_unit_test(test_control_answers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
