/* SPDX-License-Identifier: MIT */
/* Unit tests for publish/memcache_pub's pure parts: the stored value format,
 * the server selection hash (CRC-32 IEEE, as the original's client) and the
 * reading of MemcacheServers entries. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/hostport.h"
#include "publish/memcache_pub.h"

static void test_format(void **state)
{
    (void)state;
    char buf[64];
    assert_int_equal(memcache_pub_format(buf, sizeof(buf), 1497418678836ull, 0.54), 22);
    assert_string_equal(buf, "1497418678836:0.540000");
    memcache_pub_format(buf, sizeof(buf), 1700000000000ull, 1234.5678904);
    assert_string_equal(buf, "1700000000000:1234.567890");
}

static void test_crc32(void **state)
{
    (void)state;
    assert_int_equal(memcache_pub_crc32("123456789", 9), 0xcbf43926u);
    assert_int_equal(memcache_pub_crc32("", 0), 0);
    /* The server for a key with three servers, as the Go client picks it
     * (values from zlib's crc32). */
    assert_int_equal(memcache_pub_crc32("freno/mysql/main", 16), 0x296aa9e7u);
    assert_int_equal(memcache_pub_crc32("freno/mysql/main", 16) % 3, 1);
    assert_int_equal(memcache_pub_crc32("freno/mysql/other", 17) % 3, 0);
}

static void server_ok(const char *in, const char *host, uint16_t port)
{
    struct hostport hp;
    const char *why = NULL;
    if (memcache_pub_parse_server(in, &hp, &why) != 0)
        fail_msg("\"%s\" refused: %s", in, why);
    assert_string_equal(hp.host, host);
    assert_int_equal(hp.port, port);
}

static void server_refused(const char *in, const char *reason)
{
    struct hostport hp;
    const char *why = NULL;
    assert_int_equal(memcache_pub_parse_server(in, &hp, &why), -EINVAL);
    assert_string_equal(why, reason);
}

/* MemcacheServers entries: the documented forms, and what is refused (the
 * parser once read "host:12abc" as port 12). */
static void test_servers(void **state)
{
    (void)state;
    server_ok("m", "m", 11211);
    server_ok("m:11212", "m", 11212);
    server_ok("127.0.0.1:11211", "127.0.0.1", 11211);
    server_ok("[::1]:11300", "::1", 11300);
    server_ok("[::1]", "::1", 11211);
    server_ok("::1", "::1", 11211);
    server_refused("host:12abc", "invalid port");
    server_refused("host:", "invalid port");
    server_refused("host:0", "invalid port");
    server_refused("host:65536", "invalid port");
    server_refused("[::1]:x", "invalid port");
    server_refused("", "empty host");
    server_refused("[::1", "missing ']'");
    server_refused("a b:1", "invalid host name");
    server_refused("user:pw@host:11211", "credentials are not supported");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_format),
            cmocka_unit_test(test_crc32),
            cmocka_unit_test(test_servers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
