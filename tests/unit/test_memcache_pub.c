/* SPDX-License-Identifier: MIT */
/* Unit tests for publish/memcache_pub's pure parts: the stored value format
 * and the server selection hash (CRC-32 IEEE, as the original's client). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

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
    /* The server a key goes to must be the one the original's client picks:
     * CRC-32 (IEEE) of the key modulo the number of servers. Values from
     * Python's zlib.crc32. */
    assert_int_equal(memcache_pub_crc32("freno/mysql/main", 16), 0x296aa9e7u);
    assert_int_equal(memcache_pub_crc32("freno/mysql/main", 16) % 3, 1);
    assert_int_equal(memcache_pub_crc32("freno/mysql/archive", 19), 0xafcc76ccu);
    assert_int_equal(memcache_pub_crc32("freno/mysql/archive", 19) % 3, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_format),
            cmocka_unit_test(test_crc32),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
