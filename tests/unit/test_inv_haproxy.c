/* SPDX-License-Identifier: MIT */
/* Unit tests for inventory/inv_haproxy: the stats CSV parser fed a capture
 * from HAProxy 2.6 (servers in UP, DOWN, DRAIN, MAINT and "no check"),
 * transitioning variants of it, an older and shorter column layout, columns
 * in another order, quoting, and every error case; and the CSV URL. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "core/err.h"
#include "inv_fixture.h"
#include "inventory/inv_haproxy.h"

static int parse(const char *csv, const char *pool, struct inv_hosts *out, struct err *err)
{
    return inv_haproxy_parse(csv, strlen(csv), pool, 3306, out, err);
}

static void test_capture_states(void **state)
{
    (void)state;
    size_t len;
    char *csv = inv_fixture_read("haproxy-2.6-states.csv", &len);
    struct inv_hosts l = {0};
    struct err err = {0};
    /* UP (named host:port), DOWN, UP; DRAIN (db-c) and MAINT (db-e) skipped. */
    assert_int_equal(inv_haproxy_parse(csv, len, "mysql_ro", 3306, &l, &err), 0);
    const char *want[] = {"127.0.0.1:18291", "db-b:3306", "db-d:3306"};
    inv_expect_hosts(&l, want, 3);
    inv_hosts_deinit(&l);

    assert_int_equal(inv_haproxy_parse(csv, len, "other_pool", 3307, &l, &err), 0);
    const char *want2[] = {"x1:3307"}; /* "no check" is probed */
    inv_expect_hosts(&l, want2, 1);
    inv_hosts_deinit(&l);

    /* The stats listener has only FRONTEND/BACKEND rows: found, no servers. */
    assert_int_equal(inv_haproxy_parse(csv, len, "stats", 3306, &l, &err), 0);
    assert_int_equal(l.len, 0);

    assert_int_equal(inv_haproxy_parse(csv, len, "nope", 3306, &l, &err), -EINVAL);
    assert_string_equal(err.msg, "pool nope not found");
    free(csv);
}

static void test_capture_transitioning(void **state)
{
    (void)state;
    size_t len;
    char *csv = inv_fixture_read("haproxy-2.6-transitioning.csv", &len);
    struct inv_hosts l = {0};
    struct err err = {0};
    /* "UP 1/2" (going down) is skipped; "DOWN 1/2" (going up) is probed. */
    assert_int_equal(inv_haproxy_parse(csv, len, "mysql_ro", 3306, &l, &err), 0);
    const char *want[] = {"db-b:3306", "db-d:3306"};
    inv_expect_hosts(&l, want, 2);
    inv_hosts_deinit(&l);
    free(csv);

    csv = inv_fixture_read("haproxy-2.6-all-up-transitioning.csv", &len);
    assert_int_equal(inv_haproxy_parse(csv, len, "mysql_ro", 3306, &l, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "all 2 UP servers are transitioning"));
    inv_hosts_deinit(&l);
    free(csv);
}

/* The layout of HAProxy 1.5/1.6 (fewer columns), as the original's tests use. */
static const char old_layout[] =
        "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,"
        "wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,"
        "sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,"
        "check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,"
        "req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,\n"
        "ro_front,FRONTEND,,,0,0,20000,0,0,0,0,0,0,,,,,OPEN,,,,,,,,,1,2,0,,,,0,0,0,0,,,,,,,,,,,"
        "0,0,0,,,\n"
        "ro_main,db-1a,0,0,0,0,,0,0,0,,0,,0,0,0,0,NOLB,10,1,0,0,0,1032064,0,,1,3,1,,0,,2,0,,0,"
        "L7OKC,404,12,,,,,,,0,,,,0,0\n"
        "ro_main,db-1b,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP,10,1,0,0,0,1032063,0,,1,3,2,,0,,2,0,,0,"
        "L7OK,200,15,,,,,,,0,,,,0,0\n"
        "ro_main,db-1c,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN (agent),10,1,0,49,6,89174,368958,,1,3,"
        "3,,0,,2,0,,0,L7OK,200,18,,,,,,,0,,,,0,0\n"
        "ro_main,db-1d,0,0,0,0,,0,0,0,,0,,0,0,0,0,NOLB 1/2,10,1,0,0,0,1032061,0,,1,3,4,,0,,2,"
        "0,,0,L7OKC,404,12,,,,,,,0,,,,0,0\n"
        "ro_main,db-1e,0,0,0,0,,0,0,0,,0,,0,0,0,0,MAINT (via ro_backup/db-1e),10,1,0,0,0,1,0,,"
        "1,3,5,,0,,2,0,,0,,,,,,,,,0,,,,0,0\n"
        "ro_main,BACKEND,0,0,0,0,2000,0,0,0,0,0,,0,0,0,0,UP,10,1,0,,0,1032064,0,,1,3,0,,0,,1,0,,"
        "0,,,,,,,,,,,,,,0,0\n";

static void test_old_layout(void **state)
{
    (void)state;
    struct inv_hosts l = {0};
    struct err err = {0};
    assert_int_equal(parse(old_layout, "ro_main", &l, &err), 0);
    const char *want[] = {"db-1b:3306", "db-1c:3306"};
    inv_expect_hosts(&l, want, 2);
    inv_hosts_deinit(&l);
}

static void test_columns_by_name(void **state)
{
    (void)state;
    /* Columns in another order, CRLF line ends, spaces around names, quoted
     * fields with commas and doubled quotes, a short row. */
    const char *csv = "#status , weight, svname ,check_desc,pxname\r\n"
                      "UP,1,h1,\"ok, \"\"fine\"\"\",pool\r\n"
                      "NOLB,1,h2,x,pool\r\n"
                      "\"DOWN\",1,\"h3:3310\",,pool\r\n"
                      "UP,1,h4\r\n"
                      "UP,1,h5,,other\r\n"
                      "\r\n";
    struct inv_hosts l = {0};
    struct err err = {0};
    assert_int_equal(parse(csv, "pool", &l, &err), 0);
    const char *want[] = {"h1:3306", "h3:3310"};
    inv_expect_hosts(&l, want, 2);
    inv_hosts_deinit(&l);
}

static void test_ipv6_and_duplicates(void **state)
{
    (void)state;
    const char *csv = "# pxname,svname,status\n"
                      "p,[::1]:3307,UP\n"
                      "p,fe80::1,UP\n"
                      "p,db:3306,UP\n"
                      "p,db,DOWN\n"
                      "p,bad:port,UP\n";
    struct inv_hosts l = {0};
    struct err err = {0};
    assert_int_equal(parse(csv, "p", &l, &err), 0);
    const char *want[] = {"::1:3307", "fe80::1:3306", "db:3306"};
    inv_expect_hosts(&l, want, 3);
    inv_hosts_deinit(&l);
}

static void test_errors(void **state)
{
    (void)state;
    struct inv_hosts l = {0};
    struct err err = {0};
    assert_int_equal(inv_haproxy_parse("", 0, "p", 3306, &l, &err), -EINVAL);
    assert_string_equal(err.msg, "empty CSV");
    assert_int_equal(parse("\n\n", "p", &l, &err), -EINVAL);
    assert_string_equal(err.msg, "empty CSV");
    assert_int_equal(parse("# pxname,svname,status\n", "p", &l, &err), -EINVAL);
    assert_string_equal(err.msg, "CSV has a header but no rows");
    assert_int_equal(parse("# pxname,svname,status", "p", &l, &err), -EINVAL);
    assert_string_equal(err.msg, "CSV has a header but no rows");
    assert_int_equal(parse("# pxname,svname,weight\np,h,1\n", "p", &l, &err), -EINVAL);
    assert_string_equal(err.msg, "CSV header lacks the status column");
    assert_int_equal(parse("<html>404 Not Found</html>\n", "p", &l, &err), -EINVAL);
    assert_string_equal(err.msg, "CSV header lacks the pxname column");
    assert_int_equal(parse("# pxname,svname,status\nq,h,UP\n", "p", &l, &err), -EINVAL);
    assert_string_equal(err.msg, "pool p not found");
    /* Every server transitioning, whatever its state. */
    assert_int_equal(parse("# pxname,svname,status\np,a,UP 1/2\np,b,DOWN 1/2\np,BACKEND,UP\n", "p",
                           &l, &err),
                     -EINVAL);
    assert_string_equal(err.msg,
                        "pool p: all 2 servers are transitioning, HAProxy is likely reloading");
    inv_hosts_deinit(&l);
    /* Every UP server transitioning while others are stable. */
    assert_int_equal(parse("# pxname,svname,status\np,a,UP 1/2\np,b,DOWN\n", "p", &l, &err),
                     -EINVAL);
    assert_string_equal(err.msg,
                        "pool p: all 1 UP servers are transitioning, HAProxy is likely reloading");
    inv_hosts_deinit(&l);
    /* No UP server at all is not "all UP transitioning". */
    assert_int_equal(parse("# pxname,svname,status\np,a,DOWN\np,b,MAINT\n", "p", &l, &err), 0);
    assert_int_equal(l.len, 1);
    inv_hosts_deinit(&l);
}

static void test_csv_url(void **state)
{
    (void)state;
    char *u = inv_haproxy_csv_url("http://10.0.0.2:1234");
    assert_string_equal(u, "http://10.0.0.2:1234/;csv;norefresh");
    free(u);
    u = inv_haproxy_csv_url("http://10.0.0.2:1234/stats/pool");
    assert_string_equal(u, "http://10.0.0.2:1234/stats/pool;csv;norefresh");
    free(u);
    u = inv_haproxy_csv_url("https://user:pw@[::1]:8443/s");
    assert_string_equal(u, "https://user:pw@[::1]:8443/s;csv;norefresh");
    free(u);
}

static void test_split_host_port(void **state)
{
    (void)state;
    char *h;
    uint16_t p;
    assert_int_equal(inv_split_host_port("db-1:3307", 3306, &h, &p), 0);
    assert_string_equal(h, "db-1");
    assert_int_equal(p, 3307);
    free(h);
    assert_int_equal(inv_split_host_port("[::1]:13307", 3306, &h, &p), 0);
    assert_string_equal(h, "::1");
    assert_int_equal(p, 13307);
    free(h);
    assert_int_equal(inv_split_host_port("2001:db8::5", 3306, &h, &p), 0);
    assert_string_equal(h, "2001:db8::5");
    assert_int_equal(p, 3306);
    free(h);
    assert_int_equal(inv_split_host_port("db:0", 3306, &h, &p), -EINVAL);
    assert_int_equal(inv_split_host_port("db:70000", 3306, &h, &p), -EINVAL);
    assert_int_equal(inv_split_host_port(":3306", 3306, &h, &p), -EINVAL);
    assert_int_equal(inv_split_host_port("[::1", 3306, &h, &p), -EINVAL);
    assert_int_equal(inv_split_host_port("[::1]x", 3306, &h, &p), -EINVAL);
    assert_int_equal(inv_split_host_port("db", 0, &h, &p), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_capture_states),
            cmocka_unit_test(test_capture_transitioning),
            cmocka_unit_test(test_old_layout),
            cmocka_unit_test(test_columns_by_name),
            cmocka_unit_test(test_ipv6_and_duplicates),
            cmocka_unit_test(test_errors),
            cmocka_unit_test(test_csv_url),
            cmocka_unit_test(test_split_host_port),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
