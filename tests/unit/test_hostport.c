/* SPDX-License-Identifier: MIT */
/* Unit tests for core/hostport, the one host:port parser: every accepted form
 * with and without a default port, and refusals for hostile text (empty,
 * overlong, port 0 and 65536, six-digit and signed ports, missing brackets,
 * blanks, trailing junk, control characters), plus formatting back. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/hostport.h"

static void ok(const char *in, uint16_t def, const char *host, uint16_t port)
{
    struct hostport hp;
    const char *why = NULL;
    if (hostport_parse(in, def, &hp, &why) != 0)
        fail_msg("\"%s\" refused: %s", in, why);
    assert_string_equal(hp.host, host);
    assert_int_equal(hp.port, port);
}

static void refused(const char *in, int rc, const char *reason)
{
    struct hostport hp;
    const char *why = NULL;
    assert_int_equal(hostport_parse(in, 3306, &hp, &why), rc);
    assert_non_null(why);
    assert_string_equal(why, reason);
}

static void test_accepted(void **state)
{
    (void)state;
    ok("db", 3306, "db", 3306);
    ok("db-1.example.com:3307", 3306, "db-1.example.com", 3307);
    ok("10.0.0.1:1", 0, "10.0.0.1", 1);
    ok("10.0.0.1:65535", 0, "10.0.0.1", 65535);
    ok("10.0.0.1:00080", 0, "10.0.0.1", 80); /* five digits at most, zeros too */
    ok("[::1]", 11211, "::1", 11211);
    ok("[::1]:13307", 3306, "::1", 13307);
    ok("::1", 11211, "::1", 11211);
    ok("2001:db8::5", 3306, "2001:db8::5", 3306);
    ok("fe80::1%eth0", 3306, "fe80::1%eth0", 3306);
    ok("[fe80::1%eth0]:9", 3306, "fe80::1%eth0", 9);
    ok("::ffff:10.0.0.1", 1, "::ffff:10.0.0.1", 1);
    /* No port and no default: port 0, for the caller to judge. */
    ok("db", 0, "db", 0);
    ok("[::1]", 0, "::1", 0);
}

static void test_refused(void **state)
{
    (void)state;
    refused("", -EINVAL, "empty host");
    refused(":3306", -EINVAL, "empty host");
    refused("db:", -ERANGE, "invalid port");
    refused("db:0", -ERANGE, "invalid port");
    refused("db:00000", -ERANGE, "invalid port");
    refused("db:65536", -ERANGE, "invalid port");
    refused("db:99999", -ERANGE, "invalid port");
    refused("db:000080", -ERANGE, "invalid port");
    refused("db:4294967297", -ERANGE, "invalid port");
    refused("db:+80", -ERANGE, "invalid port");
    refused("db:-1", -ERANGE, "invalid port");
    refused("db:12abc", -ERANGE, "invalid port");
    refused("db:0x50", -ERANGE, "invalid port");
    refused("db: 80", -ERANGE, "invalid port");
    refused("db:80 ", -ERANGE, "invalid port");
    refused("db:80\n", -ERANGE, "invalid port");
    refused(" db:80", -EINVAL, "invalid host name");
    refused("db :80", -EINVAL, "invalid host name");
    refused("a b", -EINVAL, "invalid host name");
    refused("db\t", -EINVAL, "invalid host name");
    refused("d\x01:80", -EINVAL, "invalid host name");
    refused("d\x7f", -EINVAL, "invalid host name");
    refused("db/x:80", -EINVAL, "invalid host name");
    refused("user@db:80", -EINVAL, "invalid host name");
    refused("db?x", -EINVAL, "invalid host name");
    refused("\"db\"", -EINVAL, "invalid host name");
    refused("db]:80", -EINVAL, "invalid host name");
    refused("db:1:2", -EINVAL, "invalid port or IPv6 address");
    refused("::1:80:", -EINVAL, "invalid port or IPv6 address");
    refused("fe80::1%", -EINVAL, "invalid port or IPv6 address");
    refused("[::1", -EINVAL, "missing ']'");
    refused("[::1:80", -EINVAL, "missing ']'");
    refused("[", -EINVAL, "missing ']'");
    refused("[::1]x", -EINVAL, "unexpected text after ']'");
    refused("[::1] :80", -EINVAL, "unexpected text after ']'");
    refused("[::1]:80]", -ERANGE, "invalid port");
    refused("[]:80", -EINVAL, "invalid IPv6 address");
    refused("[db]:80", -EINVAL, "invalid IPv6 address");
    refused("[10.0.0.1]:80", -EINVAL, "invalid IPv6 address");
    refused("[::1 ]:80", -EINVAL, "invalid IPv6 address");
    refused("[fe80::1%]:80", -EINVAL, "invalid IPv6 address");
}

static void test_lengths(void **state)
{
    (void)state;
    char name[HOSTPORT_HOST_MAX + 16];
    struct hostport hp;
    const char *why;

    /* The longest name is taken whole, with or without a port. */
    memset(name, 'a', HOSTPORT_HOST_MAX);
    name[HOSTPORT_HOST_MAX] = '\0';
    assert_int_equal(hostport_parse(name, 1, &hp, &why), 0);
    assert_int_equal(strlen(hp.host), HOSTPORT_HOST_MAX);
    memcpy(name + HOSTPORT_HOST_MAX, ":7", 3);
    assert_int_equal(hostport_parse(name, 1, &hp, &why), 0);
    assert_int_equal(hp.port, 7);
    /* One byte more is refused. */
    memset(name, 'a', HOSTPORT_HOST_MAX + 1);
    memcpy(name + HOSTPORT_HOST_MAX + 1, ":7", 3);
    refused(name, -EINVAL, "host name longer than 255 bytes");

    /* A megabyte of each shape. */
    size_t big = 1u << 20;
    char *huge = malloc(big + 1);
    memset(huge, 'b', big);
    huge[big] = '\0';
    refused(huge, -EINVAL, "host name longer than 255 bytes");
    memset(huge, ':', big);
    refused(huge, -EINVAL, "invalid port or IPv6 address");
    huge[0] = '[';
    refused(huge, -EINVAL, "missing ']'");
    memcpy(huge, "[::1]:", 6);
    memset(huge + 6, '9', big - 6);
    refused(huge, -ERANGE, "invalid port");
    free(huge);
}

static void test_format(void **state)
{
    (void)state;
    char out[HOSTPORT_TEXT_SIZE];
    assert_int_equal(hostport_format(out, sizeof(out), "db", 3306), 7);
    assert_string_equal(out, "db:3306");
    hostport_format(out, sizeof(out), "::1", 80);
    assert_string_equal(out, "[::1]:80");
    hostport_format(out, sizeof(out), "fe80::1%eth0", 9);
    assert_string_equal(out, "[fe80::1%eth0]:9");

    /* What the parser gives always fits, and parses back to itself. */
    char name[HOSTPORT_HOST_MAX + 1];
    memset(name, 'z', HOSTPORT_HOST_MAX);
    name[HOSTPORT_HOST_MAX] = '\0';
    int n = hostport_format(out, sizeof(out), name, 65535);
    assert_true(n > 0 && (size_t)n < sizeof(out));
    struct hostport hp;
    const char *why;
    assert_int_equal(hostport_parse(out, 0, &hp, &why), 0);
    assert_string_equal(hp.host, name);
    assert_int_equal(hp.port, 65535);
}

static void test_is_host(void **state)
{
    (void)state;
    assert_true(hostport_is_host("db", 2));
    assert_true(hostport_is_host("db:1", 2)); /* only the first @len bytes */
    assert_true(hostport_is_host("::1", 3));
    assert_true(hostport_is_host("fe80::1%eth0", 12));
    assert_false(hostport_is_host("", 0));
    assert_false(hostport_is_host("a b", 3));
    assert_false(hostport_is_host("db:1", 4));
    assert_false(hostport_is_host("[::1]", 5));
    assert_false(hostport_is_host("u@db", 4));
    char name[HOSTPORT_HOST_MAX + 1];
    memset(name, 'a', sizeof(name));
    assert_true(hostport_is_host(name, HOSTPORT_HOST_MAX));
    assert_false(hostport_is_host(name, HOSTPORT_HOST_MAX + 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_accepted), cmocka_unit_test(test_refused),
            cmocka_unit_test(test_lengths),  cmocka_unit_test(test_format),
            cmocka_unit_test(test_is_host),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
