/* SPDX-License-Identifier: MIT */
/* Unit tests for probe: MetricQuery classification and result parsing for
 * every shape a server may answer with, then probes driven by a real loop
 * (unsupported query, refused port, and, with FRENO_TEST_MYSQL_PORT set, a
 * live server: values, cache, no pile-up). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "live_mysql.h"
#include <uv.h>

#include "core/clock.h"
#include "loop/loop.h"
#include "metrics/metrics.h"
#include "mysql/myasync.h"
#include "probe/probe.h"

/* ---- query kinds ---- */

static void test_query_kind(void **state)
{
    (void)state;
    assert_int_equal(probe_query_kind("select 1"), PROBE_QUERY_SELECT);
    assert_int_equal(probe_query_kind("SELECT max(lag) FROM meta.heartbeat"), PROBE_QUERY_SELECT);
    assert_int_equal(probe_query_kind("  \n\tSeLeCt 1"), PROBE_QUERY_SELECT);
    assert_int_equal(probe_query_kind("show global status like 'threads_running'"),
                     PROBE_QUERY_SHOW_GLOBAL);
    assert_int_equal(probe_query_kind("SHOW GLOBAL VARIABLES LIKE 'x'"), PROBE_QUERY_SHOW_GLOBAL);
    assert_int_equal(probe_query_kind(" show\tglobal status"), PROBE_QUERY_SHOW_GLOBAL);
    assert_int_equal(probe_query_kind(""), PROBE_QUERY_REPLICATION);
    assert_int_equal(probe_query_kind(NULL), PROBE_QUERY_REPLICATION);
    assert_int_equal(probe_query_kind("  \n "), PROBE_QUERY_REPLICATION);
    assert_int_equal(probe_query_kind("show status like 'x'"), PROBE_QUERY_UNSUPPORTED);
    assert_int_equal(probe_query_kind("showglobal status"), PROBE_QUERY_UNSUPPORTED);
    assert_int_equal(probe_query_kind("show slave status"), PROBE_QUERY_UNSUPPORTED);
    assert_int_equal(probe_query_kind("update t set a = 1"), PROBE_QUERY_UNSUPPORTED);
    assert_int_equal(probe_query_kind("(select 1)"), PROBE_QUERY_UNSUPPORTED);
    assert_int_equal(probe_query_kind("sel"), PROBE_QUERY_UNSUPPORTED);
}

/* ---- parsing ---- */

static char msg[256];

static int parse(const char *query, size_t nrows, size_t ncols, const char *const *colnames,
                 const char *const *cells, double *value)
{
    memset(msg, 'Z', sizeof(msg));
    msg[sizeof(msg) - 1] = '\0';
    int rc = probe_parse_value(query, nrows, ncols, colnames, cells, value, msg);
    if (rc < 0) {
        assert_int_equal(rc, -EINVAL);
        assert_true(strlen(msg) > 0 && strlen(msg) < 256);
        assert_null(strchr(msg, '\n'));
    }
    return rc;
}

static void want_error(const char *query, size_t nrows, size_t ncols, const char *const *colnames,
                       const char *const *cells, const char *want)
{
    double v = -1;
    assert_int_equal(parse(query, nrows, ncols, colnames, cells, &v), -EINVAL);
    if (strstr(msg, want) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", msg, want);
    assert_true(v == -1); /* untouched on error */
}

static void want_value(const char *query, size_t nrows, size_t ncols, const char *const *colnames,
                       const char *const *cells, double want)
{
    double v = -1;
    if (parse(query, nrows, ncols, colnames, cells, &v) != 0)
        fail_msg("unexpected error: %s", msg);
    assert_true(v == want);
}

static void test_parse_select(void **state)
{
    (void)state;
    const char *q = "select lag from meta.heartbeat";
    const char *one[] = {"lag"};
    want_value(q, 1, 1, one, (const char *[]){"1.5"}, 1.5);
    want_value(q, 1, 1, one, (const char *[]){"42"}, 42);
    want_value(q, 1, 1, one, (const char *[]){"-3"}, -3);
    want_value(q, 1, 1, one, (const char *[]){"0.000000"}, 0);
    want_value("  SELECT 1", 1, 1, one, (const char *[]){"1e3"}, 1000);

    want_error(q, 1, 1, one, (const char *[]){NULL}, "metric query returned NULL");
    want_error(q, 1, 1, one, (const char *[]){"abc"}, "non-numeric value: \"abc\"");
    want_error(q, 1, 1, one, (const char *[]){""}, "non-numeric value: \"\"");
    want_error(q, 1, 1, one, (const char *[]){"12abc"}, "non-numeric");
    want_error(q, 1, 1, one, (const char *[]){" 12"}, "non-numeric");
    want_error(q, 1, 1, one, (const char *[]){"nan"}, "non-numeric");
    want_error(q, 1, 1, one, (const char *[]){"inf"}, "non-numeric");
    want_error(q, 0, 1, one, NULL, "metric query returned no rows");
    want_error(q, 2, 1, one, (const char *[]){"1", "2"}, "returned 2 rows, expected one");
    want_error(q, 1, 2, (const char *[]){"a", "b"}, (const char *[]){"1", "2"},
               "returned 2 columns, expected one");
    want_error(q, 1, 0, NULL, NULL, "returned 0 columns, expected one");

    /* Values are quoted safely in messages: short, one line. */
    char longval[400];
    memset(longval, '7', sizeof(longval) - 2);
    longval[0] = 'x';
    longval[sizeof(longval) - 2] = '\n';
    longval[sizeof(longval) - 1] = '\0';
    want_error(q, 1, 1, one, (const char *[]){longval}, "...");
    want_error(q, 1, 1, one, (const char *[]){"a\nb\tc"}, "\"a?b?c\"");
}

static void test_parse_show_global(void **state)
{
    (void)state;
    const char *q = "show global status like 'threads_running'";
    const char *cols[] = {"Variable_name", "Value"};
    want_value(q, 1, 2, cols, (const char *[]){"Threads_running", "7"}, 7);
    want_value(q, 1, 2, cols, (const char *[]){NULL, "7"}, 7);
    want_error(q, 1, 2, cols, (const char *[]){"Threads_running", NULL},
               "returned NULL for Threads_running");
    want_error(q, 1, 2, cols, (const char *[]){"Threads_running", "ON"},
               "non-numeric value for Threads_running: \"ON\"");
    want_error(q, 0, 2, cols, NULL, "no rows");
    want_error(q, 2, 2, cols, (const char *[]){"a", "1", "b", "2"}, "returned 2 rows");
    want_error(q, 1, 1, cols, (const char *[]){"7"}, "expected two (name, value)");
    want_error(q, 1, 3, (const char *[]){"a", "b", "c"}, (const char *[]){"a", "1", "2"},
               "returned 3 columns, expected two");
}

/* The columns of SHOW SLAVE STATUS that matter, among others. */
static const char *const slave_cols[] = {"Slave_IO_State", "Slave_IO_Running", "Slave_SQL_Running",
                                         "Seconds_Behind_Master", "Channel_Name"};

static void test_parse_replication(void **state)
{
    (void)state;
    want_value("", 1, 5, slave_cols, (const char *[]){"Waiting", "Yes", "Yes", "12", ""}, 12);
    want_value(NULL, 1, 5, slave_cols, (const char *[]){"Waiting", "Yes", "Yes", "0", NULL}, 0);
    want_error("", 1, 5, slave_cols, (const char *[]){"", "Yes", "No", NULL, ""},
               "replication not running; Slave_IO_Running=Yes, Slave_SQL_Running=No");
    want_error("", 0, 5, slave_cols, NULL, "not a replica");

    /* Multi-source: one row per channel, the worst lag wins. */
    want_value("", 3, 5, slave_cols,
               (const char *[]){"", "Yes", "Yes", "3", "a", "", "Yes", "Yes", "40", "b", "", "Yes",
                                "Yes", "7", "c"},
               40);
    want_error("", 2, 5, slave_cols,
               (const char *[]){"", "Yes", "Yes", "3", "a", "", "No", "Yes", NULL, "b"},
               "replication not running on channel 'b'; Slave_IO_Running=No");

    /* MySQL 8.4 SHOW REPLICA STATUS; names are matched case-insensitively. */
    const char *const replica_cols[] = {"Replica_IO_Running", "Replica_SQL_Running",
                                        "seconds_behind_source"};
    want_value("", 1, 3, replica_cols, (const char *[]){"Yes", "Yes", "5"}, 5);
    want_error("", 1, 3, replica_cols, (const char *[]){"Connecting", "Yes", NULL},
               "replication not running; Replica_IO_Running=Connecting, Replica_SQL_Running=Yes");

    const char *const no_lag[] = {"Slave_IO_Running", "Slave_SQL_Running"};
    want_error("", 1, 2, no_lag, (const char *[]){"Yes", "Yes"}, "no Seconds_Behind_Master column");
    const char *const only_lag[] = {"Seconds_Behind_Master"};
    want_error("", 1, 1, only_lag, (const char *[]){NULL},
               "replication not running; Slave_IO_Running=?, Slave_SQL_Running=?");
    want_error("", 1, 1, only_lag, (const char *[]){"soon"},
               "non-numeric Seconds_Behind_Master: \"soon\"");
}

static void test_parse_unsupported(void **state)
{
    (void)state;
    want_error("update t set a = 1", 1, 1, (const char *[]){"a"}, (const char *[]){"1"},
               "Unsupported metrics query type: update t set a = 1");
    char longq[1000];
    memset(longq, 'q', sizeof(longq) - 1);
    longq[sizeof(longq) - 1] = '\0';
    want_error(longq, 0, 0, NULL, NULL, "Unsupported metrics query type: qqq");
}

/* ---- probes on a loop ---- */

struct env {
    struct loop *loop;
    uv_loop_t *uv;
};

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    e->loop = loop_new();
    e->uv = loop_uv(e->loop);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    loop_free(e->loop);
    free(e);
    return 0;
}

/* Runs the loop until @p is idle; fails after 10 s. */
static void run_until_idle(struct env *e, struct probe *p)
{
    uint64_t deadline = clock_mono_ms() + 10000;
    while (probe_is_busy(p)) {
        assert_true(clock_mono_ms() < deadline);
        uv_run(e->uv, UV_RUN_NOWAIT);
        usleep(1000);
    }
}

static uint16_t closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void test_probe_unsupported_never_connects(void **state)
{
    struct env *e = *state;
    struct probe_params pp = {.host = "127.0.0.1",
                              .port = 1,
                              .user = "u",
                              .password = "p",
                              .query = "show slave status",
                              .cluster = "main"};
    struct probe *p = probe_new(e->loop, &pp);
    assert_int_equal(probe_last(p)->status, PROBE_NONE_YET);
    uint64_t total = metrics_get(METRICS_PROBES_TOTAL);
    uint64_t errors = metrics_get(METRICS_PROBES_ERROR);
    probe_start(p, loop_now_ms(e->loop));
    assert_false(probe_is_busy(p));
    assert_int_equal(probe_last(p)->status, PROBE_ERR);
    assert_string_equal(probe_last(p)->msg, "Unsupported metrics query type: show slave status");
    assert_int_equal(metrics_get(METRICS_PROBES_TOTAL), total + 1);
    assert_int_equal(metrics_get(METRICS_PROBES_ERROR), errors + 1);
    probe_free(p);
    probe_free(NULL);
}

static void test_probe_refused_is_dial_error(void **state)
{
    struct env *e = *state;
    struct probe_params pp = {.host = "127.0.0.1",
                              .port = closed_port(),
                              .user = "u",
                              .password = "p",
                              .query = "select 1"};
    struct probe *p = probe_new(e->loop, &pp);
    uint64_t errors = metrics_get(METRICS_PROBES_ERROR);
    uint64_t samples = metrics_get(METRICS_PROBES_LATENCY_COUNT);
    probe_start(p, loop_now_ms(e->loop));
    assert_true(probe_is_busy(p));
    probe_start(p, loop_now_ms(e->loop)); /* no pile-up: ignored */
    run_until_idle(e, p);
    assert_int_equal(probe_last(p)->status, PROBE_ERR_DIAL);
    assert_non_null(strstr(probe_last(p)->msg, "connect 127.0.0.1:"));
    assert_true(probe_last(p)->at_ms > 0);
    assert_int_equal(metrics_get(METRICS_PROBES_ERROR), errors + 1);
    assert_int_equal(metrics_get(METRICS_PROBES_LATENCY_COUNT), samples + 1);
    /* A failure is never served from the cache. */
    probe_start(p, loop_now_ms(e->loop));
    assert_true(probe_is_busy(p));
    /* Freed while running. */
    probe_free(p);
}

static struct probe *real_probe(struct env *e, const char *query, uint32_t cache_ms)
{
    uint16_t port = live_mysql_port();
    struct probe_params pp = {.host = "127.0.0.1",
                              .port = port,
                              .user = live_mysql_user(),
                              .password = live_mysql_password(),
                              .query = query,
                              .cache_ms = cache_ms,
                              .cluster = "test"};
    return probe_new(e->loop, &pp);
}

static const struct probe_result *probe_once(struct env *e, struct probe *p)
{
    probe_start(p, loop_now_ms(e->loop));
    run_until_idle(e, p);
    return probe_last(p);
}

static void test_real_probe_values(void **state)
{
    struct env *e = *state;
    struct probe *p = real_probe(e, "select 1.5", 0);
    const struct probe_result *r = probe_once(e, p);
    assert_int_equal(r->status, PROBE_OK);
    assert_true(r->value == 1.5);
    assert_string_equal(r->msg, "");
    probe_free(p);

    p = real_probe(e, "show global status like 'threads_running'", 0);
    r = probe_once(e, p);
    assert_int_equal(r->status, PROBE_OK);
    assert_true(r->value >= 1);
    probe_free(p);

    /* Unqualified names resolve in information_schema, as in the original. */
    p = real_probe(e, "select count(*) from processlist", 0);
    r = probe_once(e, p);
    assert_int_equal(r->status, PROBE_OK);
    assert_true(r->value >= 1);
    probe_free(p);

    p = real_probe(e, "select NULL", 0);
    r = probe_once(e, p);
    assert_int_equal(r->status, PROBE_ERR);
    assert_non_null(strstr(r->msg, "returned NULL"));
    print_message("    %s\n", r->msg);
    probe_free(p);

    p = real_probe(e, "select nonsense from", 0);
    r = probe_once(e, p);
    assert_int_equal(r->status, PROBE_ERR);
    assert_non_null(strstr(r->msg, "[mysql 1064]"));
    probe_free(p);

    /* The test server is not a replica. */
    p = real_probe(e, "", 0);
    r = probe_once(e, p);
    print_message("    %s\n", r->msg);
    assert_int_equal(r->status, PROBE_ERR);
    assert_non_null(strstr(r->msg, "not a replica"));
    probe_free(p);
}

static void test_real_probe_cache(void **state)
{
    struct env *e = *state;
    struct probe *p = real_probe(e, "select unix_timestamp(now(6)) * 1000000", 60000);
    const struct probe_result *r = probe_once(e, p);
    assert_int_equal(r->status, PROBE_OK);
    double first = r->value;
    uint64_t at = r->at_ms;
    /* Younger than CacheMillis: nothing runs. */
    probe_start(p, at + 59999);
    assert_false(probe_is_busy(p));
    assert_true(probe_last(p)->value == first);
    /* Expired: probes again. */
    usleep(2000);
    probe_start(p, at + 60000);
    assert_true(probe_is_busy(p));
    run_until_idle(e, p);
    assert_int_equal(probe_last(p)->status, PROBE_OK);
    assert_true(probe_last(p)->value > first);
    probe_free(p);
}

static int group_setup(void **state)
{
    (void)state;
    return myasync_library_init();
}

static int group_teardown(void **state)
{
    (void)state;
    myasync_library_end();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_query_kind),
            cmocka_unit_test(test_parse_select),
            cmocka_unit_test(test_parse_show_global),
            cmocka_unit_test(test_parse_replication),
            cmocka_unit_test(test_parse_unsupported),
            cmocka_unit_test_setup_teardown(test_probe_unsupported_never_connects, setup, teardown),
            cmocka_unit_test_setup_teardown(test_probe_refused_is_dial_error, setup, teardown),
            cmocka_unit_test_setup_teardown(test_real_probe_values, setup, teardown),
            cmocka_unit_test_setup_teardown(test_real_probe_cache, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
