/* SPDX-License-Identifier: MIT */
/* Unit tests for leader/raft_addr: canonical raft addresses (what libraft's
 * transport accepts, with clear errors for the rest) and node ids, which
 * every node computes alone and must never change. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "leader/raft_addr.h"

static void addr_ok(const char *in, int64_t default_port, const char *want)
{
    char out[RAFT_ADDR_MAX];
    struct err err = {0};
    if (raft_addr_normalize(in, default_port, out, &err) != 0)
        fail_msg("normalize \"%s\": %s", in, err.msg);
    assert_string_equal(out, want);
}

static void addr_fails(const char *in, int64_t default_port, const char *msg)
{
    char out[RAFT_ADDR_MAX] = "untouched";
    struct err err = {0};
    assert_int_equal(raft_addr_normalize(in, default_port, out, &err), -EINVAL);
    assert_string_equal(err.msg, msg);
    assert_string_equal(out, "untouched");
}

static void test_addr(void **state)
{
    (void)state;
    addr_ok("10.0.0.1", 9888, "10.0.0.1:9888");
    addr_ok("10.0.0.1:1234", 9888, "10.0.0.1:1234");
    addr_ok("  127.0.0.1:10008\t", 0, "127.0.0.1:10008");
    addr_ok("10.0.0.1:00080", 0, "10.0.0.1:80");
    addr_fails("", 0, "raft address: empty");
    addr_fails("   ", 9888, "raft address: empty");
    addr_fails("10.0.0.1", 0, "raft address 10.0.0.1: no port, and DefaultRaftPort is not set");
    addr_fails("10.0.0.1", 70000, "raft address 10.0.0.1: DefaultRaftPort 70000 is not 1 to 65535");
    addr_fails("10.0.0.1:0", 0, "raft address 10.0.0.1:0: port must be 1 to 65535");
    addr_fails("10.0.0.1:65536", 0, "raft address 10.0.0.1:65536: port must be 1 to 65535");
    addr_fails("10.0.0.1:", 0, "raft address 10.0.0.1:: port must be 1 to 65535");
    addr_fails("10.0.0.1:http", 0, "raft address 10.0.0.1:http: port must be 1 to 65535");
    addr_fails("freno-1:9888", 0,
               "raft address freno-1: not an IPv4 address; libraft's transport does not resolve "
               "host names");
    addr_fails("10.0.0:9888", 0,
               "raft address 10.0.0: not an IPv4 address; libraft's transport does not resolve "
               "host names");
    addr_fails("[::1]:9888", 0,
               "raft address [::1]:9888: IPv6 is not supported by libraft's transport; use an IPv4 "
               "address");
    addr_fails(
            "::1", 9888,
            "raft address ::1: IPv6 is not supported by libraft's transport; use an IPv4 address");
    char longer[400];
    memset(longer, '1', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    char out[RAFT_ADDR_MAX];
    assert_int_equal(raft_addr_normalize(longer, 1, out, NULL), -EINVAL);
}

static void test_addr_id(void **state)
{
    (void)state;
    /* Every node computes ids alone: the value must never change between
     * builds or machines (FNV-1a 64 of the canonical address). */
    assert_int_equal(raft_addr_id("127.0.0.1:10008"), 18063654059432044575ull);
    assert_true(raft_addr_id("10.0.0.1:9888") != raft_addr_id("10.0.0.2:9888"));
    assert_true(raft_addr_id("10.0.0.1:9888") != raft_addr_id("10.0.0.1:9889"));
    assert_true(raft_addr_id("") != 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_addr),
            cmocka_unit_test(test_addr_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
