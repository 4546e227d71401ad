/* SPDX-License-Identifier: MIT */
/* The audit record's clean text: hostile values (control characters, line
 * breaks, quotes, bytes that are not UTF-8, Unicode line separators) come
 * out as JSON escapes, cuts never split an escape, and the ring keeps the
 * newest entries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/audit.h"

static void expect_clean(const char *in, size_t size, const char *want)
{
    char buf[512];
    assert_true(size <= sizeof(buf));
    size_t n = audit_clean(buf, size, in);
    assert_string_equal(buf, want);
    assert_int_equal(n, strlen(want));
    assert_true(n < size);
}

static void test_clean_hostile(void **state)
{
    (void)state;
    expect_clean(NULL, 64, "-");
    expect_clean("", 64, "-");
    expect_clean("etl", 64, "etl");
    expect_clean("a\nb\rc\td", 64, "a\\u000ab\\u000dc\\u0009d");
    expect_clean("say \"hi\" \\o/", 64, "say \\\"hi\\\" \\\\o/");
    expect_clean("del\x7f", 64, "del\\u007f");
    expect_clean("bad\xff\xfe", 64, "bad\\u00ff\\u00fe");
    expect_clean("caf\xc3\xa9", 64, "caf\xc3\xa9"); /* UTF-8 stays */
    expect_clean("c1\xc2\x85", 64, "c1\\u0085");    /* NEL, a C1 control */
    expect_clean("ls\xe2\x80\xa8ps\xe2\x80\xa9", 64, "ls\\u2028ps\\u2029");
    expect_clean("esc\x1b[31m", 64, "esc\\u001b[31m");
    /* A forged log line stays on its line. */
    expect_clean("x\n2026-01-01T00:00:00Z info audit: who=\"root\"", 128,
                 "x\\u000a2026-01-01T00:00:00Z info audit: who=\\\"root\\\"");
}

static void test_clean_cuts(void **state)
{
    (void)state;
    expect_clean("abcdefghij", 11, "abcdefghij");
    expect_clean("abcdefghijk", 11, "abcdefg...");
    /* The escape that does not fit is left out whole. */
    expect_clean("abcd\nxyz", 11, "abcd...");
    expect_clean("\n\n\n", 8, "...");
    /* Never a split UTF-8 character. */
    expect_clean("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 8, "\xc3\xa9\xc3\xa9...");
    char big[600];
    memset(big, '\n', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    char out[AUDIT_PARAMS_SIZE];
    size_t n = audit_clean(out, sizeof(out), big);
    assert_true(n < sizeof(out));
    assert_string_equal(out + n - 3, "...");
}

static void test_params_and_line(void **state)
{
    (void)state;
    struct audit_record r = {.status = 200};
    audit_clean(r.who, sizeof(r.who), "ops");
    audit_clean(r.peer, sizeof(r.peer), "10.0.0.1");
    audit_clean(r.forwarded, sizeof(r.forwarded), "1.2.3.4\n");
    audit_clean(r.what, sizeof(r.what), "throttle-app");
    audit_clean(r.message, sizeof(r.message), "OK");
    audit_params_init(&r);
    audit_params_add(&r, "app", "e\"tl\x01");
    audit_params_add(&r, "ttl", NULL);
    audit_params_add(&r, "ratio", "0.5");
    assert_string_equal(r.params, "{\"app\":\"e\\\"tl\\u0001\",\"ratio\":\"0.5\"}");
    /* The params are one JSON object whatever the values held. */
    json_t *j = json_loads(r.params, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "app")), "e\"tl\x01");
    json_decref(j);
    char line[1024];
    size_t n = audit_format_line(line, sizeof(line), &r);
    assert_int_equal(n, strlen(line));
    assert_string_equal(
            line, "who=\"ops\" peer=\"10.0.0.1\" forwarded=\"1.2.3.4\\u000a\" "
                  "what=\"throttle-app\" params={\"app\":\"e\\\"tl\\u0001\",\"ratio\":\"0.5\"} "
                  "status=200 message=\"OK\"");
    assert_null(strchr(line, '\n'));
    /* A member that does not fit is left out; the object stays whole. */
    char huge[2000];
    memset(huge, 'a', sizeof(huge) - 1);
    huge[sizeof(huge) - 1] = '\0';
    audit_params_add(&r, "name", huge);
    audit_params_add(&r, "more", huge);
    j = json_loads(r.params, 0, NULL);
    assert_non_null(j);
    json_decref(j);
    assert_true(strlen(r.params) < sizeof(r.params));
    /* A whole record of the longest fields fits a log line. */
    struct audit_record full;
    memset(&full, 'x', sizeof(full));
    full.who[sizeof(full.who) - 1] = full.peer[sizeof(full.peer) - 1] = '\0';
    full.forwarded[sizeof(full.forwarded) - 1] = full.what[sizeof(full.what) - 1] = '\0';
    full.params[sizeof(full.params) - 1] = full.message[sizeof(full.message) - 1] = '\0';
    full.status = 503;
    assert_true(audit_format_line(line, sizeof(line), &full) < 1024 - 64);
}

static void test_ring(void **state)
{
    (void)state;
    struct audit_ring ring = {.cap = 3};
    size_t len;
    assert_null(audit_ring_newest_first(&ring, &len));
    assert_int_equal(len, 0);
    for (int i = 0; i < 5; i++) {
        struct audit_record r = {.status = 200 + i};
        audit_ring_push(&ring, &r);
    }
    struct audit_record *v = audit_ring_newest_first(&ring, &len);
    assert_int_equal(len, 3);
    assert_int_equal(v[0].status, 204);
    assert_int_equal(v[1].status, 203);
    assert_int_equal(v[2].status, 202);
    free(v);
    audit_ring_clear(&ring);
    assert_int_equal(ring.len, 0);
    assert_int_equal(ring.cap, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_clean_hostile),
            cmocka_unit_test(test_clean_cuts),
            cmocka_unit_test(test_params_and_line),
            cmocka_unit_test(test_ring),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
