/* SPDX-License-Identifier: MIT */
/* Unit tests for core/redact: URL user information and credential-like
 * query values are masked in free text and in bare addresses, everything
 * else is left as it was, the output is cut safely, and masking is
 * idempotent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/redact.h"

static void text_is(const char *in, const char *want)
{
    char out[512];
    assert_string_equal(redact_text(in, out, sizeof(out)), want);
    /* Idempotent, and the heap variant agrees. */
    char again[512];
    assert_string_equal(redact_text(out, again, sizeof(again)), want);
    char *dup = redact_text_dup(in);
    assert_string_equal(dup, want);
    free(dup);
}

static void address_is(const char *in, const char *want)
{
    char out[512];
    assert_string_equal(redact_address(in, out, sizeof(out)), want);
    char *dup = redact_address_dup(in);
    assert_string_equal(dup, want);
    free(dup);
}

static void test_userinfo_in_text(void **state)
{
    (void)state;
    text_is("haproxy GET http://stats:s3cret@lb2:1001/haproxy/;csv;norefresh: Failed to connect",
            "haproxy GET http://***@lb2:1001/haproxy/;csv;norefresh: Failed to connect");
    text_is("https://user@vtctld/api", "https://***@vtctld/api");
    text_is("http://:pw@h/", "http://***@h/");
    text_is("http://@h/", "http://***@h/");
    /* An unescaped '@' or '/' in the password is masked whole. */
    text_is("GET http://u:p@ss@h:1/x done", "GET http://***@h:1/x done");
    text_is("GET http://u:pa/ss@h:1/x done", "GET http://***@h:1/x done");
    /* Several URLs, quoted, in parentheses, upper-case schemes. */
    text_is("a \"http://a:b@x\" and (HTTPS://c:d@y/z) and 'ftp://e@f'",
            "a \"http://***@x\" and (HTTPS://***@y/z) and 'ftp://***@f'");
    text_is("mysql://root:pw@db:3306/schema?charset=utf8",
            "mysql://***@db:3306/schema?charset=utf8");
    /* Nothing to mask: left exactly as it was. */
    text_is("", "");
    text_is("no url here: user@example.com", "no url here: user@example.com");
    text_is("http://lb1:1001/;csv;norefresh", "http://lb1:1001/;csv;norefresh");
    text_is("http://h/path?email=a@b", "http://h/path?email=a@b");
    text_is("broken :// here and ://@x", "broken :// here and ://@x");
    text_is("http://h/a#frag@x", "http://h/a#frag@x");
}

static void test_query_parameters(void **state)
{
    (void)state;
    text_is("GET http://h/p?token=abc&cells=a,b&Access_Token=xyz#f",
            "GET http://h/p?token=***&cells=a,b&Access_Token=***#f");
    text_is("http://h/?password=1&pwd=2&api_key=3&key=4&keyspace=ks&sig=5&auth=6&x=7",
            "http://h/?password=***&pwd=***&api_key=***&key=***&keyspace=ks&sig=***&auth=***&x=7");
    text_is("http://u:p@h/?secret=s then http://h2/?q=1",
            "http://***@h/?secret=*** then http://h2/?q=1");
    text_is("http://h/?token", "http://h/?token");
    text_is("http://h/?token=", "http://h/?token=***");
}

static void test_addresses(void **state)
{
    (void)state;
    address_is("user:pw@memcache-1:11211", "***@memcache-1:11211");
    address_is("memcache-1:11211", "memcache-1:11211");
    address_is("[2001:db8::7]:3307", "[2001:db8::7]:3307");
    address_is("u:p/w@db-1:3306", "***@db-1:3306");
    address_is("user:pass@tcp(db:3306)/schema", "***@tcp(db:3306)/schema");
    address_is("lb:1001/stats?token=t", "lb:1001/stats?token=***");
    address_is("http://a:b@lb:1001/stats", "http://***@lb:1001/stats");
    address_is("", "");
}

/* A short buffer is cut, never holds a byte of a secret, and is always
 * terminated. */
static void test_short_buffers(void **state)
{
    (void)state;
    const char *in = "x http://user:topsecret@host/?token=alsosecret";
    for (size_t size = 0; size < 64; size++) {
        char out[64];
        memset(out, 'Z', sizeof(out));
        redact_text(in, out, size);
        if (size == 0) {
            assert_int_equal(out[0], 'Z');
            continue;
        }
        assert_true(strlen(out) < size);
        assert_null(strstr(out, "secret"));
        assert_null(strstr(out, "user"));
        assert_null(strstr(out, "top"));
    }
    assert_string_equal(redact_text(NULL, (char[8]){0}, 8), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_userinfo_in_text),
            cmocka_unit_test(test_query_parameters),
            cmocka_unit_test(test_addresses),
            cmocka_unit_test(test_short_buffers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
