/* SPDX-License-Identifier: MIT */
/* Loop-driven tests for mysql/myasync: refused and silent servers time out
 * without blocking the loop, and, when FRENO_TEST_MYSQL_PORT names a running
 * server on 127.0.0.1 (user FRENO_TEST_MYSQL_USER, default root, password
 * FRENO_TEST_MYSQL_PASSWORD, default empty), real queries, reuse, timeouts
 * and reconnects (tests/unit/live_mysql.h: without the port they fail). */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
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
#include "mysql/myasync.h"

#define GUARD_MS 15000

struct outcome {
    int calls;
    enum myconn_status status;
    char msg[512];
    size_t nrows;
    size_t ncols;
    char col0[64];
    char cell[4][64];
    bool null[4];
    char last[64]; /* the last cell of the result */
    uint64_t done_ms;
};

/* The loop of the running test: callbacks stop it so that UV_RUN_ONCE does
 * not go on to wait for I/O after a callback that ran in the timer phase. */
static uv_loop_t *current_uv;

struct env {
    struct loop *loop;
    uv_loop_t *uv;
    uv_timer_t ticker;
    int ticks;
};

static void on_tick(uv_timer_t *t)
{
    struct env *e = t->data;
    e->ticks++;
}

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    e->loop = loop_new();
    e->uv = loop_uv(e->loop);
    current_uv = e->uv;
    uv_timer_init(e->uv, &e->ticker);
    e->ticker.data = e;
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    loop_free(e->loop); /* closes the ticker and runs until every handle is gone */
    free(e);
    return 0;
}

static void on_done(struct myconn *c, enum myconn_status status, const struct myresult *res,
                    const char *errmsg, void *arg)
{
    (void)c;
    struct outcome *o = arg;
    uv_stop(current_uv);
    o->calls++;
    o->status = status;
    o->done_ms = clock_mono_ms();
    assert_non_null(errmsg);
    snprintf(o->msg, sizeof(o->msg), "%s", errmsg);
    if (status != MYCONN_OK) {
        assert_null(res);
        assert_true(strlen(errmsg) > 0);
        assert_null(strchr(errmsg, '\n'));
        return;
    }
    assert_non_null(res);
    o->nrows = res->nrows;
    o->ncols = res->ncols;
    if (res->ncols > 0)
        snprintf(o->col0, sizeof(o->col0), "%s", res->colnames[0]);
    for (size_t i = 0; i < res->nrows * res->ncols && i < 4; i++) {
        o->null[i] = res->cells[i] == NULL;
        snprintf(o->cell[i], sizeof(o->cell[i]), "%s", res->cells[i] ? res->cells[i] : "");
    }
    size_t n = res->nrows * res->ncols;
    if (n > 0)
        snprintf(o->last, sizeof(o->last), "%s", res->cells[n - 1] ? res->cells[n - 1] : "(null)");
}

static void on_guard(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

/* Runs the loop until @o has its answer (or the guard expires). */
static void run_until(struct env *e, struct outcome *o)
{
    bool expired = false;
    uv_timer_t guard;
    uv_timer_init(e->uv, &guard);
    guard.data = &expired;
    uv_timer_start(&guard, on_guard, GUARD_MS, 0);
    while (o->calls == 0 && !expired)
        uv_run(e->uv, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(e->uv, UV_RUN_NOWAIT);
    assert_false(expired);
    assert_int_equal(o->calls, 1);
}

/* Runs the loop for about @ms. */
static void run_for(struct env *e, uint64_t ms)
{
    bool expired = false;
    uv_timer_t guard;
    uv_timer_init(e->uv, &guard);
    guard.data = &expired;
    uv_timer_start(&guard, on_guard, ms, 0);
    while (!expired)
        uv_run(e->uv, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(e->uv, UV_RUN_NOWAIT);
}

static uint16_t bound_port(int fd)
{
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } u;
    memset(&u, 0, sizeof(u));
    socklen_t len = sizeof(u);
    assert_int_equal(getsockname(fd, &u.sa, &len), 0);
    return ntohs(u.sa.sa_family == AF_INET6 ? u.in6.sin6_port : u.in.sin_port);
}

/* A listening socket on @ip that never accepts: the kernel completes the TCP
 * handshake, but no server greeting ever comes. Returns -1 if @ip is not
 * available here. */
static int silent_listener(int family, const char *ip, uint16_t *port)
{
    int fd = socket(family, SOCK_STREAM, 0);
    if (fd == -1)
        return -1;
    struct sockaddr_storage ss = {0};
    socklen_t len;
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        inet_pton(AF_INET6, ip, &a->sin6_addr);
        len = sizeof(*a);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        inet_pton(AF_INET, ip, &a->sin_addr);
        len = sizeof(*a);
    }
    if (bind(fd, (struct sockaddr *)&ss, len) == -1 || listen(fd, 16) == -1) {
        close(fd);
        return -1;
    }
    *port = bound_port(fd);
    return fd;
}

/* A loopback port with nothing listening on it. */
static uint16_t closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    uint16_t port = bound_port(fd);
    close(fd);
    return port;
}

static struct myconn_params params_for(const char *host, uint16_t port)
{
    struct myconn_params p = {
            .host = host,
            .port = port,
            .user = "root",
            .password = "",
            .connect_timeout_ms = 1000,
            .query_timeout_ms = 1000,
    };
    return p;
}

static void test_refused_is_connect_error(void **state)
{
    struct env *e = *state;
    uint16_t port = closed_port();
    struct myconn_params p = params_for("127.0.0.1", port);
    struct myconn *c = myconn_new(e->loop, &p);
    struct outcome o = {0};
    uint64_t t0 = clock_mono_ms();
    assert_int_equal(myconn_query(c, "select 1", on_done, &o), 0);
    /* Never called back from inside myconn_query, even for a fast failure. */
    assert_int_equal(o.calls, 0);
    assert_true(myconn_is_busy(c));
    assert_int_equal(myconn_query(c, "select 2", on_done, &o), -EBUSY);
    run_until(e, &o);
    assert_int_equal(o.status, MYCONN_ERR_CONNECT);
    assert_true(o.done_ms - t0 < 500);
    assert_false(myconn_is_busy(c));
    char want[64];
    snprintf(want, sizeof(want), "connect 127.0.0.1:%u: ", (unsigned)port);
    assert_non_null(strstr(o.msg, want));
    assert_non_null(strstr(o.msg, "[mysql 200"));
    assert_true(myconn_last_errno(c) == 2002 || myconn_last_errno(c) == 2003);
    print_message("    %s\n", o.msg);
    myconn_free(c);
}

static void expect_silent_timeout(struct env *e, const char *host, uint16_t port,
                                  const char *want_in_msg)
{
    struct myconn_params p = params_for(host, port);
    struct myconn *c = myconn_new(e->loop, &p);
    struct outcome o = {0};
    e->ticks = 0;
    uv_timer_start(&e->ticker, on_tick, 20, 20);
    uint64_t t0 = clock_mono_ms();
    assert_int_equal(myconn_query(c, "select 1", on_done, &o), 0);
    run_until(e, &o);
    uv_timer_stop(&e->ticker);
    uint64_t elapsed = o.done_ms - t0;
    print_message("    %s (%llu ms, %d ticks)\n", o.msg, (unsigned long long)elapsed, e->ticks);
    assert_int_equal(o.status, MYCONN_ERR_CONNECT);
    assert_non_null(strstr(o.msg, "timed out after 1000 ms"));
    assert_non_null(strstr(o.msg, want_in_msg));
    assert_true(elapsed >= 950 && elapsed < 1600);
    /* The loop kept running while the handshake was awaited. */
    assert_true(e->ticks >= 30);
    myconn_free(c);
}

static void test_silent_server_times_out(void **state)
{
    struct env *e = *state;
    uint16_t port = 0;
    int fd = silent_listener(AF_INET, "127.0.0.1", &port);
    assert_true(fd >= 0);
    char want[64];
    snprintf(want, sizeof(want), "connect 127.0.0.1:%u:", (unsigned)port);
    expect_silent_timeout(e, "127.0.0.1", port, want);
    close(fd);
}

static void test_silent_server_ipv6(void **state)
{
    struct env *e = *state;
    uint16_t port = 0;
    int fd = silent_listener(AF_INET6, "::1", &port);
    if (fd == -1)
        skip();
    char want[64];
    snprintf(want, sizeof(want), "connect [::1]:%u:", (unsigned)port);
    expect_silent_timeout(e, "::1", port, want);
    close(fd);
}

/* "localhost" is resolved off the loop and dialled over TCP to 127.0.0.1: the
 * silent listener there gets the connection (the unix socket would not). */
static void test_localhost_is_tcp(void **state)
{
    struct env *e = *state;
    uint16_t port = 0;
    int fd = silent_listener(AF_INET, "127.0.0.1", &port);
    assert_true(fd >= 0);
    struct myconn_params p = params_for("localhost", port);
    p.connect_timeout_ms = 300;
    struct myconn *c = myconn_new(e->loop, &p);
    struct outcome o = {0};
    assert_int_equal(myconn_query(c, "select 1", on_done, &o), 0);
    run_until(e, &o);
    print_message("    %s\n", o.msg);
    assert_int_equal(o.status, MYCONN_ERR_CONNECT);
    assert_non_null(strstr(o.msg, "(127.0.0.1)"));
    assert_non_null(strstr(o.msg, "timed out after 300 ms"));
    int conn = accept(fd, NULL, NULL);
    assert_true(conn >= 0);
    close(conn);
    close(fd);
    myconn_free(c);
}

/* Freeing a connection in every phase calls nothing back and leaks nothing
 * (the sanitizer checks the latter at exit). */
static void test_free_in_flight(void **state)
{
    struct env *e = *state;
    uint16_t port = 0;
    int fd = silent_listener(AF_INET, "127.0.0.1", &port);
    assert_true(fd >= 0);
    const char *hosts[] = {"127.0.0.1", "localhost"};
    const uint64_t waits[] = {0, 1, 50};
    for (size_t h = 0; h < 2; h++) {
        for (size_t w = 0; w < 3; w++) {
            struct myconn_params p = params_for(hosts[h], port);
            struct myconn *c = myconn_new(e->loop, &p);
            struct outcome o = {0};
            assert_int_equal(myconn_query(c, "select 1", on_done, &o), 0);
            if (waits[w] == 1)
                uv_run(e->uv, UV_RUN_NOWAIT);
            else if (waits[w] > 1)
                run_for(e, waits[w]);
            myconn_free(c);
            run_for(e, 20);
            assert_int_equal(o.calls, 0);
        }
    }
    /* Nothing at all ever started. */
    struct myconn_params p = params_for("127.0.0.1", port);
    myconn_free(myconn_new(e->loop, &p));
    myconn_free(NULL);
    close(fd);
}

static void test_hex_literal(void **state)
{
    (void)state;
    char buf[32] = "x = ";
    size_t len = 4;
    assert_int_equal(myasync_hex_literal(buf, sizeof(buf), &len, "a'b\\"), 0);
    assert_string_equal(buf, "x = X'6127625C'");
    assert_int_equal(len, strlen(buf));
    assert_int_equal(myasync_hex_literal(buf, sizeof(buf), &len, ""), 0);
    assert_string_equal(buf, "x = X'6127625C'''");
    assert_int_equal(len, strlen(buf));

    char small[8] = "";
    len = 0;
    assert_int_equal(myasync_hex_literal(small, sizeof(small), &len, "ab"), 0);
    assert_string_equal(small, "X'6162'"); /* 7 bytes + NUL fits exactly */
    len = 0;
    small[0] = '\0';
    assert_int_equal(myasync_hex_literal(small, sizeof(small), &len, "abc"), -ENOSPC);
    assert_int_equal(len, 0);
    len = 8;
    assert_int_equal(myasync_hex_literal(small, sizeof(small), &len, ""), -ENOSPC);

    char all[600];
    char bytes[256];
    for (int i = 1; i < 256; i++)
        bytes[i - 1] = (char)i;
    bytes[255] = '\0';
    len = 0;
    assert_int_equal(myasync_hex_literal(all, sizeof(all), &len, bytes), 0);
    assert_int_equal(len, 3 + 2 * 255);
    assert_memory_equal(all, "X'0102", 6);
    assert_string_equal(all + len - 5, "FEFF'");
}

/* ---- against a real server ---- */

static struct myconn *real_conn(struct env *e, uint32_t query_timeout_ms, const char *collation)
{
    uint16_t port = live_mysql_port();
    struct myconn_params p = params_for("127.0.0.1", port);
    p.user = live_mysql_user();
    p.password = live_mysql_password();
    p.query_timeout_ms = query_timeout_ms;
    p.collation = collation;
    return myconn_new(e->loop, &p);
}

static struct outcome query(struct env *e, struct myconn *c, const char *sql)
{
    struct outcome o = {0};
    assert_int_equal(myconn_query(c, sql, on_done, &o), 0);
    run_until(e, &o);
    return o;
}

static struct outcome query_ok(struct env *e, struct myconn *c, const char *sql)
{
    struct outcome o = query(e, c, sql);
    if (o.status != MYCONN_OK)
        fail_msg("%s: %s", sql, o.msg);
    return o;
}

static void test_real_values(void **state)
{
    struct env *e = *state;
    struct myconn *c = real_conn(e, 1000, NULL);

    struct outcome o = query_ok(e, c, "select 1.5");
    assert_int_equal(o.nrows, 1);
    assert_int_equal(o.ncols, 1);
    assert_string_equal(o.cell[0], "1.5");
    assert_string_equal(o.col0, "1.5");

    o = query_ok(e, c, "select NULL as v");
    assert_int_equal(o.nrows, 1);
    assert_true(o.null[0]);
    assert_string_equal(o.col0, "v");

    o = query_ok(e, c, "show global status like 'threads_running'");
    assert_int_equal(o.nrows, 1);
    assert_int_equal(o.ncols, 2);
    assert_string_equal(o.cell[0], "Threads_running");
    assert_true(strtol(o.cell[1], NULL, 10) >= 1);

    o = query_ok(e, c, "select 1 from dual where 1 = 0");
    assert_int_equal(o.nrows, 0);
    assert_int_equal(o.ncols, 1);

    o = query_ok(e, c, "select 1, 'two', NULL union all select 4, 'five', 6");
    assert_int_equal(o.nrows, 2);
    assert_int_equal(o.ncols, 3);
    assert_string_equal(o.cell[1], "two");
    assert_true(o.null[2]);
    assert_string_equal(o.cell[3], "4");

    /* A statement without a result set gives an empty result. */
    o = query_ok(e, c, "do 1");
    assert_int_equal(o.nrows, 0);
    assert_int_equal(o.ncols, 0);

    o = query_ok(e, c, "select @@character_set_client, @@character_set_results");
    assert_string_equal(o.cell[0], "utf8mb4");
    assert_string_equal(o.cell[1], "utf8mb4");

    /* The probe's default schema. */
    o = query_ok(e, c, "select database()");
    assert_true(o.null[0]);
    myconn_free(c);
}

static void test_real_collation(void **state)
{
    struct env *e = *state;
    struct myconn *c = real_conn(e, 1000, "utf8mb4_unicode_ci");
    struct outcome o = query_ok(e, c, "select @@collation_connection, @@character_set_client");
    assert_string_equal(o.cell[0], "utf8mb4_unicode_ci");
    assert_string_equal(o.cell[1], "utf8mb4");
    myconn_free(c);

    c = real_conn(e, 1000, "utf8mb4_nonsense_ci");
    o = query(e, c, "select 1");
    print_message("    %s\n", o.msg);
    assert_int_equal(o.status, MYCONN_ERR_CONNECT);
    assert_non_null(strstr(o.msg, "SET NAMES"));
    myconn_free(c);

    c = real_conn(e, 1000, "x; drop table t");
    o = query(e, c, "select 1");
    assert_int_equal(o.status, MYCONN_ERR_CONNECT);
    assert_non_null(strstr(o.msg, "invalid charset or collation"));
    myconn_free(c);
}

static void test_real_errors_and_reuse(void **state)
{
    struct env *e = *state;
    struct myconn *c = real_conn(e, 1000, NULL);
    struct outcome o = query_ok(e, c, "select connection_id()");
    char id[64];
    snprintf(id, sizeof(id), "%s", o.cell[0]);

    o = query(e, c, "selec 1");
    print_message("    %s\n", o.msg);
    assert_int_equal(o.status, MYCONN_ERR_QUERY);
    assert_int_equal(myconn_last_errno(c), 1064);
    assert_non_null(strstr(o.msg, "[mysql 1064]"));

    o = query(e, c, "select * from no_such_db.no_such_table");
    assert_int_equal(o.status, MYCONN_ERR_QUERY);

    /* An error after rows were already sent ends the result. */
    o = query(e, c,
              "select seq, if(seq = 9000, (select 1 union select 2), seq) "
              "from mysql.seq_1_to_10000");
    print_message("    %s\n", o.msg);
    assert_int_equal(o.status, MYCONN_ERR_QUERY);
    assert_int_equal(myconn_last_errno(c), 1242);

    /* A server error leaves the connection in use. */
    o = query_ok(e, c, "select connection_id()");
    assert_string_equal(o.cell[0], id);
    assert_int_equal(myconn_last_errno(c), 0);
    myconn_free(c);
}

static void test_real_timeout_then_reconnect(void **state)
{
    struct env *e = *state;
    struct myconn *c = real_conn(e, 500, NULL);
    struct outcome o = query_ok(e, c, "select connection_id()");
    char id[64];
    snprintf(id, sizeof(id), "%s", o.cell[0]);

    e->ticks = 0;
    uv_timer_start(&e->ticker, on_tick, 20, 20);
    uint64_t t0 = clock_mono_ms();
    o = query(e, c, "select sleep(3)");
    uv_timer_stop(&e->ticker);
    uint64_t elapsed = o.done_ms - t0;
    print_message("    %s (%llu ms)\n", o.msg, (unsigned long long)elapsed);
    assert_int_equal(o.status, MYCONN_ERR_TIMEOUT);
    assert_non_null(strstr(o.msg, "timed out after 500 ms"));
    assert_true(elapsed >= 450 && elapsed < 1000);
    assert_true(e->ticks >= 15);

    o = query_ok(e, c, "select connection_id()");
    assert_string_not_equal(o.cell[0], id);

    /* The new connection killed the abandoned query, which would otherwise
     * have run on for 3 s. */
    run_for(e, 200);
    struct myconn *admin = real_conn(e, 1000, NULL);
    char sql[160];
    snprintf(sql, sizeof(sql),
             "select count(*) from information_schema.processlist where id = %s and info like "
             "'select sleep%%'",
             id);
    o = query_ok(e, admin, sql);
    assert_string_equal(o.cell[0], "0");
    myconn_free(admin);
    myconn_free(c);
}

static void test_real_huge_result(void **state)
{
    struct env *e = *state;
    struct myconn *c = real_conn(e, 5000, NULL);
    struct outcome o = query_ok(e, c, "select count(*) from mysql.seq_1_to_10000");
    assert_string_equal(o.cell[0], "10000");
    o = query_ok(e, c, "select seq from mysql.seq_1_to_10000");
    assert_int_equal(o.nrows, 10000);
    o = query(e, c, "select seq from mysql.seq_1_to_200000");
    print_message("    %s\n", o.msg);
    assert_int_equal(o.status, MYCONN_ERR_QUERY);
    assert_non_null(strstr(o.msg, "result too large"));
    o = query(e, c, "select repeat('x', 1000000) from mysql.seq_1_to_20");
    print_message("    %s\n", o.msg);
    assert_int_equal(o.status, MYCONN_ERR_QUERY);
    assert_non_null(strstr(o.msg, "more than 16777216 bytes"));
    o = query_ok(e, c, "select 7");
    assert_string_equal(o.cell[0], "7");
    myconn_free(c);
}

static struct outcome query_limited(struct env *e, struct myconn *c, const char *sql,
                                    size_t max_rows, size_t max_bytes, uint32_t timeout_ms)
{
    struct outcome o = {0};
    struct myquery_limits lim = {
            .max_rows = max_rows, .max_bytes = max_bytes, .timeout_ms = timeout_ms};
    assert_int_equal(myconn_query_limited(c, sql, &lim, on_done, &o), 0);
    run_until(e, &o);
    return o;
}

/* A query's deadline counts from its own start, whatever the timer still
 * armed from the query before: the timer stays armed between queries and
 * fires early for a query with a longer timeout, which must then wait for
 * the rest of its own. */
static void test_real_deadline_per_query(void **state)
{
    struct env *e = *state;
    struct myconn *c = real_conn(e, 2000, NULL);
    struct outcome o = query_limited(e, c, "select 1", 0, 0, 200);
    assert_int_equal(o.status, MYCONN_OK);
    uint64_t t0 = clock_mono_ms();
    o = query_limited(e, c, "select sleep(3)", 0, 0, 700);
    uint64_t elapsed = o.done_ms - t0;
    print_message("    %s (%llu ms)\n", o.msg, (unsigned long long)elapsed);
    assert_int_equal(o.status, MYCONN_ERR_TIMEOUT);
    assert_true(elapsed >= 680 && elapsed < 1500);
    /* And a shorter timeout than the armed timer's is kept too. */
    o = query_limited(e, c, "select 1", 0, 0, 2000);
    assert_int_equal(o.status, MYCONN_OK);
    t0 = clock_mono_ms();
    o = query_limited(e, c, "select sleep(3)", 0, 0, 300);
    elapsed = o.done_ms - t0;
    print_message("    %s (%llu ms)\n", o.msg, (unsigned long long)elapsed);
    assert_int_equal(o.status, MYCONN_ERR_TIMEOUT);
    assert_true(elapsed >= 280 && elapsed < 1000);
    myconn_free(c);
}

/* Limits are per query: a backend reload may read 100,000 rows on the
 * connection whose other queries keep the defaults, and every cell (NULL,
 * empty, long) survives the single buffer results are read into. */
static void test_real_query_limits(void **state)
{
    struct env *e = *state;
    struct myconn *c = real_conn(e, 5000, NULL);
    uint64_t t0 = clock_mono_ms();
    struct outcome o =
            query_limited(e, c, "select seq, concat('app-', seq), null from mysql.seq_1_to_100000",
                          100001, 100001 * 64, 10000);
    print_message("    100000 rows of 3 columns in %" PRIu64 " ms\n", clock_mono_ms() - t0);
    if (o.status != MYCONN_OK)
        fail_msg("100000 rows: %s", o.msg);
    assert_int_equal(o.nrows, 100000);
    assert_string_equal(o.cell[0], "1");
    assert_string_equal(o.cell[1], "app-1");
    assert_true(o.null[2]);
    assert_string_equal(o.cell[3], "2");
    assert_string_equal(o.last, "(null)");

    /* One row past the limit fails, and so does one byte past it. */
    o = query_limited(e, c, "select seq from mysql.seq_1_to_101", 100, 0, 0);
    assert_int_equal(o.status, MYCONN_ERR_QUERY);
    assert_non_null(strstr(o.msg, "result too large: more than 100 rows"));
    o = query_ok(e, c, "select seq from mysql.seq_1_to_100");
    assert_int_equal(o.nrows, 100);
    /* "1".."9" are 2 bytes each with the NUL: 18 bytes fit, 17 do not. */
    o = query_limited(e, c, "select seq from mysql.seq_1_to_9", 0, 18, 0);
    assert_int_equal(o.status, MYCONN_OK);
    o = query_limited(e, c, "select seq from mysql.seq_1_to_9", 0, 17, 0);
    assert_int_equal(o.status, MYCONN_ERR_QUERY);
    assert_non_null(strstr(o.msg, "more than 17 bytes"));

    /* Empty strings and NULLs keep their difference; long cells are whole. */
    o = query_ok(e, c, "select '', null, repeat('y', 60), 'z'");
    assert_string_equal(o.cell[0], "");
    assert_false(o.null[0]);
    assert_true(o.null[1]);
    assert_int_equal(strlen(o.cell[2]), 60);
    assert_string_equal(o.last, "z");

    /* A per-query timeout, and the connection's own for the next query. */
    o = query_limited(e, c, "select sleep(1)", 0, 0, 200);
    assert_int_equal(o.status, MYCONN_ERR_TIMEOUT);
    assert_non_null(strstr(o.msg, "timed out after 200 ms"));
    o = query_ok(e, c, "select sleep(0.3), 5");
    assert_string_equal(o.cell[1], "5");
    /* The default caps are back too. */
    o = query(e, c, "select seq from mysql.seq_1_to_10001");
    assert_int_equal(o.status, MYCONN_ERR_QUERY);
    assert_non_null(strstr(o.msg, "more than 10000 rows"));
    myconn_free(c);
}

/* An idle connection the server closed is noticed before the next query,
 * which then succeeds on a new connection. */
static void test_real_killed_idle_connection(void **state)
{
    struct env *e = *state;
    struct myconn *c = real_conn(e, 1000, NULL);
    struct myconn *admin = real_conn(e, 1000, NULL);
    struct outcome o = query_ok(e, c, "select connection_id()");
    char sql[96];
    snprintf(sql, sizeof(sql), "kill %s", o.cell[0]);
    query_ok(e, admin, sql);
    run_for(e, 100);
    o = query_ok(e, c, "select 1");
    assert_string_equal(o.cell[0], "1");

    /* Killed while running: the server's error ends the query, and the
     * next one notices the closed connection and reconnects. */
    o = query_ok(e, c, "select connection_id()");
    snprintf(sql, sizeof(sql), "kill %s", o.cell[0]);
    struct outcome running = {0};
    assert_int_equal(myconn_query(c, "select sleep(2)", on_done, &running), 0);
    run_for(e, 100);
    query_ok(e, admin, sql);
    run_until(e, &running);
    print_message("    %s\n", running.msg);
    assert_true(running.status == MYCONN_ERR_QUERY || running.status == MYCONN_ERR_IO);
    o = query_ok(e, c, "select 2");
    assert_string_equal(o.cell[0], "2");
    myconn_free(admin);
    myconn_free(c);
}

static void test_real_bad_password(void **state)
{
    struct env *e = *state;
    uint16_t port = live_mysql_port();
    struct myconn_params p = params_for("127.0.0.1", port);
    p.user = "no_such_user_freno";
    p.password = "wrong";
    struct myconn *c = myconn_new(e->loop, &p);
    struct outcome o = query(e, c, "select 1");
    print_message("    %s\n", o.msg);
    assert_int_equal(o.status, MYCONN_ERR_CONNECT);
    assert_non_null(strstr(o.msg, "[mysql 1045]"));
    myconn_free(c);
}

/* The callback may start the next query or free the connection. */
struct chain {
    struct env *e;
    int step;
    bool freed;
    char first[64];
    char second[64];
};

static void on_chain(struct myconn *c, enum myconn_status status, const struct myresult *res,
                     const char *errmsg, void *arg)
{
    struct chain *ch = arg;
    uv_stop(current_uv);
    if (status != MYCONN_OK)
        fail_msg("chain step %d: %s", ch->step, errmsg);
    ch->step++;
    if (ch->step == 1) {
        snprintf(ch->first, sizeof(ch->first), "%s", res->cells[0]);
        assert_false(myconn_is_busy(c));
        assert_int_equal(myconn_query(c, "select connection_id()", on_chain, ch), 0);
        return;
    }
    snprintf(ch->second, sizeof(ch->second), "%s", res->cells[0]);
    myconn_free(c);
    ch->freed = true;
}

static void test_real_chain_and_free_in_callback(void **state)
{
    struct env *e = *state;
    struct myconn *c = real_conn(e, 1000, NULL);
    struct chain ch = {.e = e};
    assert_int_equal(myconn_query(c, "select connection_id()", on_chain, &ch), 0);
    while (!ch.freed)
        uv_run(e->uv, UV_RUN_ONCE);
    assert_int_equal(ch.step, 2);
    assert_string_equal(ch.first, ch.second);
}

/* Freeing with a query in flight on a live server. */
static void test_real_free_during_query(void **state)
{
    struct env *e = *state;
    struct myconn *c = real_conn(e, 5000, NULL);
    query_ok(e, c, "select 1");
    struct outcome o = {0};
    assert_int_equal(myconn_query(c, "select sleep(2)", on_done, &o), 0);
    run_for(e, 100);
    myconn_free(c);
    run_for(e, 20);
    assert_int_equal(o.calls, 0);

    c = real_conn(e, 5000, NULL);
    query_ok(e, c, "select 1");
    /* Big rows are sent as they are produced, so this stops mid-result. */
    assert_int_equal(myconn_query(c,
                                  "select repeat('x', 100000), sleep(0.02) from mysql.seq_1_to_50",
                                  on_done, &o),
                     0);
    run_for(e, 200);
    myconn_free(c);
    run_for(e, 20);
    assert_int_equal(o.calls, 0);
}

/* Runs the loop until every one of @n outcomes has its answer. */
static void run_until_all(struct env *e, struct outcome *o, size_t n)
{
    bool expired = false;
    uv_timer_t guard;
    uv_timer_init(e->uv, &guard);
    guard.data = &expired;
    uv_timer_start(&guard, on_guard, GUARD_MS, 0);
    for (;;) {
        size_t done = 0;
        for (size_t i = 0; i < n; i++)
            done += o[i].calls > 0;
        if (done == n || expired)
            break;
        uv_run(e->uv, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(e->uv, UV_RUN_NOWAIT);
    assert_false(expired);
}

/* A connect gate of one place: connects take turns in order, a waiting
 * connect runs no deadline (its own 200 ms would end long before the
 * silent server's 600 ms), a timed-out connect gives its place back, a
 * connection freed while waiting leaves the line, and nothing is held
 * afterwards; a connected connection's queries never wait. */
static void test_real_connect_gate(void **state)
{
    struct env *e = *state;
    struct loop_gate gate;
    loop_gate_init(&gate, e->loop, 1);
    uint16_t silent_port = 0;
    int fd = silent_listener(AF_INET, "127.0.0.1", &silent_port);
    assert_true(fd >= 0);
    struct myconn_params p = params_for("127.0.0.1", silent_port);
    p.connect_timeout_ms = 600;
    p.connect_gate = &gate;
    struct myconn *c[4];
    c[0] = myconn_new(e->loop, &p);
    for (int i = 1; i < 4; i++) {
        struct myconn_params q = params_for("127.0.0.1", live_mysql_port());
        q.user = live_mysql_user();
        q.password = live_mysql_password();
        q.connect_timeout_ms = 200;
        q.connect_gate = &gate;
        c[i] = myconn_new(e->loop, &q);
    }
    struct outcome o[4];
    memset(o, 0, sizeof(o));
    uint64_t t0 = clock_mono_ms();
    for (int i = 0; i < 4; i++)
        assert_int_equal(myconn_query(c[i], "select connection_id()", on_done, &o[i]), 0);
    uv_run(e->uv, UV_RUN_NOWAIT);
    assert_int_equal(loop_gate_inside(&gate), 1);
    assert_int_equal(loop_gate_waiting(&gate), 3);
    myconn_free(c[3]);
    assert_int_equal(loop_gate_waiting(&gate), 2);
    run_until_all(e, o, 3);
    for (int i = 0; i < 3; i++)
        print_message("    %d: %s after %llu ms\n", i, o[i].status == MYCONN_OK ? "ok" : o[i].msg,
                      (unsigned long long)(o[i].done_ms - t0));
    assert_int_equal(o[0].status, MYCONN_ERR_CONNECT);
    assert_non_null(strstr(o[0].msg, "timed out after 600 ms"));
    assert_int_equal(o[1].status, MYCONN_OK);
    assert_int_equal(o[2].status, MYCONN_OK);
    assert_int_equal(o[3].calls, 0);
    assert_true(o[1].done_ms >= o[0].done_ms);
    assert_true(o[2].done_ms >= o[1].done_ms);
    assert_true(o[1].done_ms - t0 >= 550);
    assert_int_equal(loop_gate_inside(&gate), 0);
    assert_int_equal(loop_gate_waiting(&gate), 0);
    /* Connected: a query does not enter the gate even when it is full. */
    struct myconn_params q = params_for("127.0.0.1", silent_port);
    q.connect_gate = &gate;
    struct myconn *blocker = myconn_new(e->loop, &q);
    struct outcome ob = {0};
    assert_int_equal(myconn_query(blocker, "select 1", on_done, &ob), 0);
    uv_run(e->uv, UV_RUN_NOWAIT);
    assert_int_equal(loop_gate_inside(&gate), 1);
    struct outcome o1 = query_ok(e, c[1], "select 1");
    assert_string_equal(o1.cell[0], "1");
    assert_int_equal(ob.calls, 0);
    /* Freed while connecting inside the gate: the place comes back. */
    myconn_free(blocker);
    assert_int_equal(loop_gate_inside(&gate), 0);
    myconn_free(c[0]);
    myconn_free(c[1]);
    myconn_free(c[2]);
    run_for(e, 20);
    close(fd);
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
            cmocka_unit_test(test_hex_literal),
            cmocka_unit_test_setup_teardown(test_refused_is_connect_error, setup, teardown),
            cmocka_unit_test_setup_teardown(test_silent_server_times_out, setup, teardown),
            cmocka_unit_test_setup_teardown(test_silent_server_ipv6, setup, teardown),
            cmocka_unit_test_setup_teardown(test_localhost_is_tcp, setup, teardown),
            cmocka_unit_test_setup_teardown(test_free_in_flight, setup, teardown),
            cmocka_unit_test_setup_teardown(test_real_values, setup, teardown),
            cmocka_unit_test_setup_teardown(test_real_collation, setup, teardown),
            cmocka_unit_test_setup_teardown(test_real_errors_and_reuse, setup, teardown),
            cmocka_unit_test_setup_teardown(test_real_timeout_then_reconnect, setup, teardown),
            cmocka_unit_test_setup_teardown(test_real_huge_result, setup, teardown),
            cmocka_unit_test_setup_teardown(test_real_query_limits, setup, teardown),
            cmocka_unit_test_setup_teardown(test_real_deadline_per_query, setup, teardown),
            cmocka_unit_test_setup_teardown(test_real_killed_idle_connection, setup, teardown),
            cmocka_unit_test_setup_teardown(test_real_bad_password, setup, teardown),
            cmocka_unit_test_setup_teardown(test_real_chain_and_free_in_callback, setup, teardown),
            cmocka_unit_test_setup_teardown(test_real_free_during_query, setup, teardown),
            cmocka_unit_test_setup_teardown(test_real_connect_gate, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
