/* SPDX-License-Identifier: MIT */
/* Unit tests for leader/raft_codec (raft log commands and snapshots): exact
 * round trips, deterministic bytes, and hostile input (truncated, mistyped,
 * over-long, randomly mutated, not NUL-terminated) that must fail cleanly. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "leader/raft_codec.h"

/* Decodes @len bytes copied into an exact-size heap block, so a read past
 * the end is caught by the address sanitizer. */
static int decode_cmd_exact(const char *text, size_t len, struct raft_codec_cmd *c, struct err *err)
{
    char *buf = malloc(len ? len : 1);
    memcpy(buf, text, len);
    int rc = raft_codec_decode_cmd(buf, len, c, err);
    free(buf);
    return rc;
}

static int decode_state_exact(const char *text, size_t len, struct raft_codec_state *s,
                              struct err *err)
{
    char *buf = malloc(len ? len : 1);
    memcpy(buf, text, len);
    int rc = raft_codec_decode_state(buf, len, s, err);
    free(buf);
    return rc;
}

static struct raft_codec_cmd roundtrip(const struct raft_codec_cmd *in)
{
    char *text = NULL;
    size_t len = 0;
    struct err err = {0};
    if (raft_codec_encode_cmd(in, &text, &len, &err) != 0)
        fail_msg("encode: %s", err.msg);
    struct raft_codec_cmd out;
    memset(&out, 0x5a, sizeof(out));
    if (decode_cmd_exact(text, len, &out, &err) != 0)
        fail_msg("decode %.*s: %s", (int)len, text, err.msg);
    free(text);
    return out;
}

static void test_cmd_roundtrip(void **state)
{
    (void)state;
    const double ratios[] = {0, 1, 0.5, 0.1, 1.0 / 3, 5e-324, 0.9999999999999999};
    for (size_t i = 0; i < sizeof(ratios) / sizeof(ratios[0]); i++) {
        struct raft_codec_cmd in = {.op = RAFT_CODEC_THROTTLE,
                                    .ratio = ratios[i],
                                    .expire_at_ms = 1700000000123ull + i};
        snprintf(in.key, sizeof(in.key), "gh-ost/main");
        struct raft_codec_cmd out = roundtrip(&in);
        assert_int_equal(out.op, RAFT_CODEC_THROTTLE);
        assert_string_equal(out.key, "gh-ost/main");
        assert_int_equal(out.expire_at_ms, in.expire_at_ms);
        assert_true(out.ratio == in.ratio); /* bit-exact, not approximately */
    }
    struct raft_codec_cmd never = {.op = RAFT_CODEC_THROTTLE, .key = "app", .ratio = 1};
    assert_int_equal(roundtrip(&never).expire_at_ms, 0);
    struct raft_codec_cmd far = {
            .op = RAFT_CODEC_SKIP, .key = "db-1", .expire_at_ms = (uint64_t)INT64_MAX};
    assert_int_equal(roundtrip(&far).expire_at_ms, (uint64_t)INT64_MAX);

    struct raft_codec_cmd un = {
            .op = RAFT_CODEC_UNTHROTTLE, .key = "app", .expire_at_ms = 9, .ratio = 0.3};
    struct raft_codec_cmd out = roundtrip(&un);
    assert_int_equal(out.op, RAFT_CODEC_UNTHROTTLE);
    assert_string_equal(out.key, "app");
    assert_int_equal(out.expire_at_ms, 0); /* not carried for this op */
    struct raft_codec_cmd rec = {.op = RAFT_CODEC_RECOVER, .key = "db-7.example.com"};
    out = roundtrip(&rec);
    assert_int_equal(out.op, RAFT_CODEC_RECOVER);
    assert_string_equal(out.key, "db-7.example.com");

    /* Keys up to the limit, any bytes but NUL, survive. */
    struct raft_codec_cmd big = {.op = RAFT_CODEC_SKIP, .expire_at_ms = 1};
    memset(big.key, 'x', RAFT_CODEC_KEY_MAX);
    big.key[0] = '"';
    big.key[1] = '\\';
    big.key[2] = (char)0xc3; /* half a UTF-8 sequence is still bytes to us... */
    big.key[3] = (char)0xa9; /* ...completed here: é */
    out = roundtrip(&big);
    assert_string_equal(out.key, big.key);
}

static void test_cmd_wire_format(void **state)
{
    (void)state;
    struct raft_codec_cmd in = {
            .op = RAFT_CODEC_THROTTLE, .key = "app", .expire_at_ms = 42, .ratio = 0.25};
    char *text;
    size_t len;
    assert_int_equal(raft_codec_encode_cmd(&in, &text, &len, NULL), 0);
    assert_int_equal(len, strlen(text));
    assert_string_equal(
            text,
            "{\"v\":1,\"op\":\"throttle\",\"key\":\"app\",\"expire_at_ms\":42,\"ratio\":0.25}");
    free(text);
    /* Members in another order, unknown members and an integer ratio are fine. */
    const char *other = "{\"ratio\":1,\"future\":[1,2],\"key\":\"a\",\"op\":\"throttle\","
                        "\"expire_at_ms\":0,\"v\":1}";
    struct raft_codec_cmd c;
    assert_int_equal(decode_cmd_exact(other, strlen(other), &c, NULL), 0);
    assert_true(c.ratio == 1.0);
    assert_string_equal(raft_codec_op_name(RAFT_CODEC_SKIP), "skip");
    assert_string_equal(raft_codec_op_name((enum raft_codec_op)99), "?");
}

static void encode_fails(const struct raft_codec_cmd *c, const char *msg)
{
    char *text = (char *)"untouched";
    size_t len = 7;
    struct err err = {0};
    assert_int_equal(raft_codec_encode_cmd(c, &text, &len, &err), -EINVAL);
    assert_string_equal(err.msg, msg);
    assert_string_equal(text, "untouched");
}

static void test_cmd_encode_rejects(void **state)
{
    (void)state;
    struct raft_codec_cmd c = {.op = RAFT_CODEC_THROTTLE, .key = "", .ratio = 1};
    encode_fails(&c, "raft command throttle: key must be 1 to 128 bytes");
    memset(c.key, 'k', sizeof(c.key)); /* no NUL within the array: 129 bytes */
    encode_fails(&c, "raft command throttle: key must be 1 to 128 bytes");
    snprintf(c.key, sizeof(c.key), "app");
    c.ratio = -0.1;
    encode_fails(&c, "raft command throttle app: ratio must be in [0..1] range");
    c.ratio = 1.5;
    encode_fails(&c, "raft command throttle app: ratio must be in [0..1] range");
    c.ratio = NAN;
    encode_fails(&c, "raft command throttle app: ratio must be in [0..1] range");
    c.ratio = 1;
    c.expire_at_ms = (uint64_t)INT64_MAX + 1;
    encode_fails(&c, "raft command throttle app: expiry too far in the future");
    c.expire_at_ms = 0;
    snprintf(c.key, sizeof(c.key), "bad\xff");
    encode_fails(&c, "raft command throttle: key is not valid UTF-8");
    c.op = (enum raft_codec_op)0;
    encode_fails(&c, "raft command: unknown operation 0");
}

static void decode_fails(const char *text, const char *msg)
{
    struct raft_codec_cmd c;
    struct err err = {0};
    assert_int_equal(decode_cmd_exact(text, strlen(text), &c, &err), -EINVAL);
    if (msg != NULL && strcmp(err.msg, msg) != 0)
        fail_msg("input %s: expected error \"%s\", got \"%s\"", text, msg, err.msg);
    assert_true(err.msg[0] != '\0');
}

static void test_cmd_decode_hostile(void **state)
{
    (void)state;
    decode_fails("", "raft command: line 1 column 0: '[' or '{' expected near end of file");
    decode_fails("null", NULL);
    decode_fails("[]", "raft command: not a JSON object");
    decode_fails("\"v\"", NULL);
    decode_fails("{}", "raft command: missing format version");
    decode_fails("{\"v\":\"1\"}", "raft command: missing format version");
    decode_fails("{\"v\":2,\"op\":\"throttle\"}", "raft command: unsupported format version 2");
    decode_fails("{\"v\":1}", "raft command: missing or unknown \"op\"");
    decode_fails("{\"v\":1,\"op\":7,\"key\":\"a\"}", "raft command: missing or unknown \"op\"");
    decode_fails("{\"v\":1,\"op\":\"drop-table\",\"key\":\"a\"}",
                 "raft command: missing or unknown \"op\"");
    decode_fails("{\"v\":1,\"op\":\"recover\"}", "raft command: missing \"key\"");
    decode_fails("{\"v\":1,\"op\":\"recover\",\"key\":5}",
                 "raft command: \"key\" must be a string");
    decode_fails("{\"v\":1,\"op\":\"recover\",\"key\":\"\"}",
                 "raft command: \"key\" must be 1 to 128 bytes with no NUL");
    decode_fails("{\"v\":1,\"op\":\"recover\",\"key\":\"a\\u0000b\"}", NULL);
    char longkey[300];
    snprintf(longkey, sizeof(longkey), "{\"v\":1,\"op\":\"recover\",\"key\":\"%0129d\"}", 0);
    decode_fails(longkey, "raft command: \"key\" must be 1 to 128 bytes with no NUL");
    decode_fails("{\"v\":1,\"op\":\"skip\",\"key\":\"h\"}",
                 "raft command: missing \"expire_at_ms\"");
    decode_fails("{\"v\":1,\"op\":\"skip\",\"key\":\"h\",\"expire_at_ms\":-1}",
                 "raft command: \"expire_at_ms\" must be a non-negative integer");
    decode_fails("{\"v\":1,\"op\":\"skip\",\"key\":\"h\",\"expire_at_ms\":1.5}",
                 "raft command: \"expire_at_ms\" must be a non-negative integer");
    decode_fails("{\"v\":1,\"op\":\"skip\",\"key\":\"h\",\"expire_at_ms\":99999999999999999999}",
                 NULL);
    decode_fails("{\"v\":1,\"op\":\"throttle\",\"key\":\"a\",\"expire_at_ms\":0}",
                 "raft command: missing \"ratio\"");
    decode_fails("{\"v\":1,\"op\":\"throttle\",\"key\":\"a\",\"expire_at_ms\":0,\"ratio\":\"1\"}",
                 "raft command: \"ratio\" must be a number in [0..1]");
    decode_fails(
            "{\"v\":1,\"op\":\"throttle\",\"key\":\"a\",\"expire_at_ms\":0,\"ratio\":1.0000001}",
            "raft command: \"ratio\" must be a number in [0..1]");
    decode_fails("{\"v\":1,\"op\":\"throttle\",\"key\":\"a\",\"expire_at_ms\":0,\"ratio\":-0.5}",
                 "raft command: \"ratio\" must be a number in [0..1]");
    decode_fails("{\"v\":1,\"v\":1,\"op\":\"recover\",\"key\":\"a\"}", NULL); /* duplicate */
    decode_fails("{\"v\":1,\"op\":\"recover\",\"key\":\"a\"", NULL);          /* truncated */
    decode_fails("{\"v\":1,\"op\":\"recover\",\"key\":\"a\"} trailing", NULL);
    decode_fails("\xff\xfe{}", NULL);

    /* Deep nesting must be refused, not recursed into without bound. */
    size_t depth = 100000;
    char *deep = malloc(2 * depth + 1);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    deep[2 * depth] = '\0';
    decode_fails(deep, NULL);
    free(deep);
}

/* Valid entries with random bytes changed, cut or inserted: never a crash,
 * and whatever decodes is a valid command. */
static void test_cmd_decode_mutations(void **state)
{
    (void)state;
    struct raft_codec_cmd seeds[] = {
            {.op = RAFT_CODEC_THROTTLE,
             .key = "app/store",
             .expire_at_ms = 1700000000000ull,
             .ratio = 0.75},
            {.op = RAFT_CODEC_SKIP, .key = "db-1", .expire_at_ms = 5},
            {.op = RAFT_CODEC_RECOVER, .key = "db-2"},
    };
    unsigned seed = 12345;
    for (size_t s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++) {
        char *text;
        size_t len;
        assert_int_equal(raft_codec_encode_cmd(&seeds[s], &text, &len, NULL), 0);
        for (int round = 0; round < 4000; round++) {
            char buf[512];
            size_t n = len;
            memcpy(buf, text, len);
            int edits = 1 + (int)(rand_r(&seed) % 3);
            for (int e = 0; e < edits; e++) {
                size_t at = n ? rand_r(&seed) % n : 0;
                switch (rand_r(&seed) % 3) {
                case 0:
                    buf[at] = (char)(rand_r(&seed) & 0xff);
                    break;
                case 1:
                    n = at;
                    break;
                default:
                    if (n < sizeof(buf)) {
                        memmove(buf + at + 1, buf + at, n - at);
                        buf[at] = "{}[]\",:0123456789.-e\\u"[rand_r(&seed) % 23];
                        n++;
                    }
                }
            }
            struct raft_codec_cmd c;
            struct err err = {0};
            if (decode_cmd_exact(buf, n, &c, &err) == 0) {
                assert_true(c.op >= RAFT_CODEC_THROTTLE && c.op <= RAFT_CODEC_RECOVER);
                assert_true(strlen(c.key) >= 1 && strlen(c.key) <= RAFT_CODEC_KEY_MAX);
                if (c.op == RAFT_CODEC_THROTTLE)
                    assert_true(c.ratio >= 0 && c.ratio <= 1);
            } else {
                assert_true(err.msg[0] != '\0');
            }
        }
        free(text);
    }
}

static void test_state_roundtrip(void **state)
{
    (void)state;
    struct raft_codec_state a = {0}, b = {0};
    raft_codec_state_add_app(&a, "zeta", 0, 1);
    raft_codec_state_add_app(&a, "abusing-app", 2015000000000ull, 1);
    raft_codec_state_add_app(&a, "gh-ost/main", 1700000060000ull, 0.3);
    raft_codec_state_add_host(&a, "db-9", 1700000000001ull);
    raft_codec_state_add_host(&a, "db-1", 1700000000002ull);
    /* The same entries added in another order give the same bytes. */
    raft_codec_state_add_app(&b, "gh-ost/main", 1700000060000ull, 0.3);
    raft_codec_state_add_app(&b, "zeta", 0, 1);
    raft_codec_state_add_app(&b, "abusing-app", 2015000000000ull, 1);
    raft_codec_state_add_host(&b, "db-1", 1700000000002ull);
    raft_codec_state_add_host(&b, "db-9", 1700000000001ull);
    char *ta, *tb;
    size_t la, lb;
    raft_codec_encode_state(&a, &ta, &la);
    raft_codec_encode_state(&b, &tb, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(ta, tb, la);
    /* The caller's arrays keep their order. */
    assert_string_equal(a.apps[0].key, "zeta");
    assert_string_equal(a.hosts[0].host, "db-9");

    struct raft_codec_state d = {0};
    struct err err = {0};
    if (decode_state_exact(ta, la, &d, &err) != 0)
        fail_msg("decode: %s", err.msg);
    assert_int_equal(d.apps_len, 3);
    assert_int_equal(d.hosts_len, 2);
    assert_string_equal(d.apps[0].key, "abusing-app");
    assert_string_equal(d.apps[1].key, "gh-ost/main");
    assert_int_equal(d.apps[1].expire_at_ms, 1700000060000ull);
    assert_true(d.apps[1].ratio == 0.3);
    assert_string_equal(d.apps[2].key, "zeta");
    assert_int_equal(d.apps[2].expire_at_ms, 0);
    assert_string_equal(d.hosts[0].host, "db-1");
    assert_int_equal(d.hosts[0].expire_at_ms, 1700000000002ull);
    raft_codec_state_deinit(&d);
    assert_null(d.apps);
    assert_int_equal(d.apps_len, 0);
    free(ta);
    free(tb);
    raft_codec_state_deinit(&a);
    raft_codec_state_deinit(&b);

    /* An entry whose key is not UTF-8 is left out rather than breaking the
     * whole snapshot. */
    struct raft_codec_state bad = {0};
    raft_codec_state_add_app(&bad, "ok", 0, 1);
    raft_codec_state_add_app(&bad, "bad\xff", 0, 1);
    raft_codec_state_add_host(&bad, "bad\xfe", 1);
    raft_codec_encode_state(&bad, &ta, &la);
    raft_codec_state_deinit(&bad);
    assert_int_equal(decode_state_exact(ta, la, &d, NULL), 0);
    assert_int_equal(d.apps_len, 1);
    assert_int_equal(d.hosts_len, 0);
    raft_codec_state_deinit(&d);
    free(ta);

    /* Empty state. */
    struct raft_codec_state e = {0};
    raft_codec_encode_state(&e, &ta, &la);
    assert_string_equal(ta, "{\"v\":1,\"apps\":[],\"hosts\":[]}");
    assert_int_equal(decode_state_exact(ta, la, &d, NULL), 0);
    assert_int_equal(d.apps_len + d.hosts_len, 0);
    raft_codec_state_deinit(&d);
    free(ta);
}

/* The exact bytes of a snapshot: entries sorted, escaped, clamped, and those
 * whose key is not UTF-8 left out wherever they stand (first, so the next
 * entry has no comma before it, in the middle, or last). */
static void test_state_exact_bytes(void **state)
{
    (void)state;
    struct raft_codec_state s = {0};
    raft_codec_state_add_app(&s, "b\xff", 5, 1);
    raft_codec_state_add_app(&s, "a\"<q", 1, 0.5);
    raft_codec_state_add_app(&s, "c", UINT64_MAX, 0);
    raft_codec_state_add_host(&s, "h\xfe", 1);
    raft_codec_state_add_host(&s, "h2\n", 2);
    raft_codec_state_add_host(&s, "h1", 3);
    raft_codec_state_add_host(&s, "\xc0", 4);
    raft_codec_state_add_host(&s, "a\xff", 5);
    char *text;
    size_t len;
    raft_codec_encode_state(&s, &text, &len);
    raft_codec_state_deinit(&s);
    const char *want = "{\"v\":1,\"apps\":[{\"key\":\"a\\\"\\u003cq\",\"expire_at_ms\":1,"
                       "\"ratio\":0.5},{\"key\":\"c\",\"expire_at_ms\":9223372036854775807,"
                       "\"ratio\":0}],\"hosts\":[{\"host\":\"h1\",\"expire_at_ms\":3},"
                       "{\"host\":\"h2\\u000a\",\"expire_at_ms\":2}]}";
    assert_int_equal(len, strlen(want));
    assert_string_equal(text, want);
    free(text);
}

static void state_fails(const char *text, const char *msg)
{
    struct raft_codec_state s = {0};
    struct err err = {0};
    assert_int_equal(decode_state_exact(text, strlen(text), &s, &err), -EINVAL);
    if (msg != NULL && strcmp(err.msg, msg) != 0)
        fail_msg("input %s: expected error \"%s\", got \"%s\"", text, msg, err.msg);
    assert_true(err.msg[0] != '\0');
    /* Nothing half-filled is handed back. */
    assert_null(s.apps);
    assert_null(s.hosts);
}

static void test_state_decode_hostile(void **state)
{
    (void)state;
    state_fails("", NULL);
    state_fails("garbage", NULL);
    state_fails("{\"apps\":[],\"hosts\":[]}", "raft snapshot: missing format version");
    state_fails("{\"v\":1}", "raft snapshot: \"apps\" and \"hosts\" must be arrays");
    state_fails("{\"v\":1,\"apps\":{},\"hosts\":[]}",
                "raft snapshot: \"apps\" and \"hosts\" must be arrays");
    state_fails("{\"v\":1,\"apps\":[3],\"hosts\":[]}", "raft snapshot: apps[0]: not an object");
    state_fails("{\"v\":1,\"apps\":[{\"key\":\"a\",\"expire_at_ms\":0,\"ratio\":1},"
                "{\"key\":\"b\",\"expire_at_ms\":0,\"ratio\":2}],\"hosts\":[]}",
                "raft snapshot: apps[1]: \"ratio\" must be a number in [0..1]");
    state_fails("{\"v\":1,\"apps\":[{\"key\":\"a\",\"ratio\":1}],\"hosts\":[]}",
                "raft snapshot: apps[0]: missing \"expire_at_ms\"");
    state_fails("{\"v\":1,\"apps\":[],\"hosts\":[{\"host\":\"\",\"expire_at_ms\":1}]}",
                "raft snapshot: hosts[0]: \"host\" must be 1 to 128 bytes with no NUL");
    state_fails("{\"v\":1,\"apps\":[],\"hosts\":[{\"host\":\"h\",\"expire_at_ms\":\"1\"}]}",
                "raft snapshot: hosts[0]: \"expire_at_ms\" must be a non-negative integer");
    state_fails("{\"v\":1,\"apps\":[],\"hosts\":[null]}", "raft snapshot: hosts[0]: not an object");
    state_fails("{\"v\":1,\"apps\":[],\"hosts\":[]", NULL);

    /* Random damage to a real snapshot. */
    struct raft_codec_state s = {0};
    for (int i = 0; i < 20; i++) {
        char key[32];
        snprintf(key, sizeof(key), "app-%d", i);
        raft_codec_state_add_app(&s, key, 1700000000000ull + (uint64_t)i, i / 20.0);
        snprintf(key, sizeof(key), "db-%d", i);
        raft_codec_state_add_host(&s, key, 1700000000000ull + (uint64_t)i);
    }
    char *text;
    size_t len;
    raft_codec_encode_state(&s, &text, &len);
    raft_codec_state_deinit(&s);
    unsigned seed = 777;
    char *buf = malloc(len);
    for (int round = 0; round < 3000; round++) {
        memcpy(buf, text, len);
        size_t n = len;
        if (round % 2)
            buf[rand_r(&seed) % len] = (char)(rand_r(&seed) & 0xff);
        else
            n = rand_r(&seed) % len;
        struct raft_codec_state d = {0};
        if (decode_state_exact(buf, n, &d, NULL) == 0) {
            for (size_t i = 0; i < d.apps_len; i++)
                assert_true(d.apps[i].ratio >= 0 && d.apps[i].ratio <= 1);
            raft_codec_state_deinit(&d);
        }
    }
    free(buf);
    free(text);
}

/* Per-app rules: the "rule" and "unrule" commands round trip; entries
 * written before rules existed still decode; a bad rule is refused. */
static void test_rule_cmds(void **state)
{
    (void)state;
    struct raft_codec_cmd in = {.op = RAFT_CODEC_SET_RULE, .expire_at_ms = 1700000000000ull};
    snprintf(in.key, sizeof(in.key), "gh-ost/main");
    snprintf(in.rule, sizeof(in.rule), "{\"Thresholds\":{\"default\":2}}");
    struct raft_codec_cmd out = roundtrip(&in);
    assert_int_equal(out.op, RAFT_CODEC_SET_RULE);
    assert_string_equal(out.key, "gh-ost/main");
    assert_string_equal(out.rule, in.rule);
    assert_true(out.expire_at_ms == in.expire_at_ms);
    struct raft_codec_cmd rm = {.op = RAFT_CODEC_REMOVE_RULE};
    snprintf(rm.key, sizeof(rm.key), "gh-ost");
    out = roundtrip(&rm);
    assert_int_equal(out.op, RAFT_CODEC_REMOVE_RULE);
    assert_string_equal(raft_codec_op_name(RAFT_CODEC_SET_RULE), "rule");
    assert_string_equal(raft_codec_op_name(RAFT_CODEC_REMOVE_RULE), "unrule");

    /* The wire format of a rule entry. */
    char *text = NULL;
    size_t len = 0;
    struct err err = {0};
    assert_int_equal(raft_codec_encode_cmd(&in, &text, &len, &err), 0);
    assert_string_equal(text, "{\"v\":1,\"op\":\"rule\",\"key\":\"gh-ost/main\","
                              "\"expire_at_ms\":1700000000000,"
                              "\"rule\":\"{\\\"Thresholds\\\":{\\\"default\\\":2}}\"}");
    free(text);

    /* Entries of the four older operations, as earlier builds wrote them. */
    const char *old[] = {
            "{\"v\":1,\"op\":\"throttle\",\"key\":\"a\",\"expire_at_ms\":5,\"ratio\":0.5}",
            "{\"v\":1,\"op\":\"unthrottle\",\"key\":\"a\"}",
            "{\"v\":1,\"op\":\"skip\",\"key\":\"h:3306\",\"expire_at_ms\":7}",
            "{\"v\":1,\"op\":\"recover\",\"key\":\"h:3306\"}",
    };
    for (size_t i = 0; i < sizeof(old) / sizeof(old[0]); i++) {
        assert_int_equal(decode_cmd_exact(old[i], strlen(old[i]), &out, &err), 0);
        assert_int_equal(out.op, (int)(RAFT_CODEC_THROTTLE + i));
    }

    /* A bad rule is refused both ways. */
    snprintf(in.rule, sizeof(in.rule), "{\"Thresholds\":{\"default\":-2}}");
    assert_int_equal(raft_codec_encode_cmd(&in, &text, &len, &err), -EINVAL);
    const char *bad[] = {
            "{\"v\":1,\"op\":\"rule\",\"key\":\"a\",\"expire_at_ms\":0}",
            "{\"v\":1,\"op\":\"rule\",\"key\":\"a\",\"expire_at_ms\":0,\"rule\":7}",
            "{\"v\":1,\"op\":\"rule\",\"key\":\"a\",\"expire_at_ms\":0,\"rule\":\"\"}",
            "{\"v\":1,\"op\":\"rule\",\"key\":\"a\",\"expire_at_ms\":0,\"rule\":\"{}\"}",
            "{\"v\":1,\"op\":\"rule\",\"key\":\"a\",\"rule\":\"{\\\"Exempt\\\":true}\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (decode_cmd_exact(bad[i], strlen(bad[i]), &out, &err) != -EINVAL)
            fail_msg("case %zu decoded: %s", i, bad[i]);
}

/* Snapshots: rules round trip; a snapshot written before rules existed
 * loads with none; a rule this build cannot read is left out alone. */
static void test_state_rules(void **state)
{
    (void)state;
    struct raft_codec_state s = {0};
    raft_codec_state_add_app(&s, "a", 0, 1);
    raft_codec_state_add_rule(&s, "z", 0, "{\"Exempt\":true}");
    raft_codec_state_add_rule(&s, "b/main", 99, "{\"Factors\":{\"default\":0.5}}");
    char *text;
    size_t len;
    raft_codec_encode_state(&s, &text, &len);
    raft_codec_state_deinit(&s);
    assert_non_null(strstr(text, "\"rules\":[{\"key\":\"b/main\",\"expire_at_ms\":99,"));
    struct raft_codec_state d = {0};
    struct err err = {0};
    assert_int_equal(decode_state_exact(text, len, &d, &err), 0);
    free(text);
    assert_int_equal(d.apps_len, 1);
    assert_int_equal(d.rules_len, 2);
    assert_string_equal(d.rules[0].key, "b/main");
    assert_true(d.rules[0].expire_at_ms == 99);
    assert_string_equal(d.rules[1].rule, "{\"Exempt\":true}");
    raft_codec_state_deinit(&d);

    const char *before = "{\"v\":1,\"apps\":[{\"key\":\"a\",\"expire_at_ms\":0,\"ratio\":1}],"
                         "\"hosts\":[{\"host\":\"h\",\"expire_at_ms\":3}]}";
    assert_int_equal(decode_state_exact(before, strlen(before), &d, &err), 0);
    assert_int_equal(d.apps_len + d.hosts_len, 2);
    assert_int_equal(d.rules_len, 0);
    raft_codec_state_deinit(&d);

    const char *later = "{\"v\":1,\"apps\":[],\"hosts\":[],\"rules\":["
                        "{\"key\":\"x\",\"expire_at_ms\":0,\"rule\":\"{\\\"Later\\\":1}\"},"
                        "{\"key\":\"y\",\"expire_at_ms\":0,\"rule\":\"{\\\"Exempt\\\":true}\"}]}";
    assert_int_equal(decode_state_exact(later, strlen(later), &d, &err), 0);
    assert_int_equal(d.rules_len, 1);
    assert_string_equal(d.rules[0].key, "y");
    assert_int_equal(d.rules_skipped, 1);
    assert_non_null(strstr(d.rules_skipped_first, "unknown member \"Later\""));
    raft_codec_state_deinit(&d);

    const char *broken[] = {
            "{\"v\":1,\"apps\":[],\"hosts\":[],\"rules\":{}}",
            "{\"v\":1,\"apps\":[],\"hosts\":[],\"rules\":[{\"key\":\"x\",\"expire_at_ms\":0}]}",
            "{\"v\":1,\"apps\":[],\"hosts\":[],\"rules\":[{\"expire_at_ms\":0,\"rule\":\"{}\"}]}",
    };
    for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++)
        if (decode_state_exact(broken[i], strlen(broken[i]), &d, &err) != -EINVAL)
            fail_msg("case %zu decoded: %s", i, broken[i]);
}

/* ---- the audit trail ---- */

static struct audit_record sample_audit(int i)
{
    struct audit_record r = {.at_ms = 1700000000000ull + (uint64_t)i, .status = 200 + i};
    audit_clean(r.who, sizeof(r.who), "ops");
    audit_clean(r.peer, sizeof(r.peer), "10.0.0.1");
    audit_clean(r.forwarded, sizeof(r.forwarded), "203.0.113.9\n");
    audit_clean(r.what, sizeof(r.what), "throttle-app");
    audit_params_init(&r);
    audit_params_add(&r, "app", "caf\xc3\xa9\x01");
    audit_clean(r.message, sizeof(r.message), "OK");
    return r;
}

static void test_audit_cmd_roundtrip(void **state)
{
    (void)state;
    struct raft_codec_cmd c = {.op = RAFT_CODEC_AUDIT, .audit = sample_audit(0)};
    char *text;
    size_t len;
    struct err err = {0};
    assert_int_equal(raft_codec_encode_cmd(&c, &text, &len, &err), 0);
    assert_string_equal(raft_codec_op_name(RAFT_CODEC_AUDIT), "audit");
    struct raft_codec_cmd d;
    if (raft_codec_decode_cmd(text, len, &d, &err) != 0)
        fail_msg("decode: %s", err.msg);
    free(text);
    assert_int_equal(d.op, RAFT_CODEC_AUDIT);
    assert_memory_equal(&d.audit, &c.audit, sizeof(d.audit));
    /* The ops before it decode as they did. */
    static const char old[] = "{\"v\":1,\"op\":\"recover\",\"key\":\"db-1\"}";
    assert_int_equal(raft_codec_decode_cmd(old, strlen(old), &d, &err), 0);
    assert_int_equal(d.op, RAFT_CODEC_RECOVER);
    /* Hostile audit entries are refused with a reason, never crash. */
    static const char *const bad[] = {
            "{\"v\":1,\"op\":\"audit\"}",
            "{\"v\":1,\"op\":\"audit\",\"audit\":[]}",
            "{\"v\":1,\"op\":\"audit\",\"audit\":{\"at_ms\":1,\"status\":200}}",
            "{\"v\":1,\"op\":\"audit\",\"audit\":{\"at_ms\":-1,\"status\":200,\"who\":\"a\","
            "\"peer\":\"p\",\"forwarded\":\"-\",\"what\":\"w\",\"params\":\"{}\",\"message\":\"m\"}}",
            "{\"v\":1,\"op\":\"audit\",\"audit\":{\"at_ms\":1,\"status\":1000,\"who\":\"a\","
            "\"peer\":\"p\",\"forwarded\":\"-\",\"what\":\"w\",\"params\":\"{}\",\"message\":\"m\"}}",
            "{\"v\":1,\"op\":\"audit\",\"audit\":{\"at_ms\":1,\"status\":200,\"who\":\"a\\u0000b\","
            "\"peer\":\"p\",\"forwarded\":\"-\",\"what\":\"w\",\"params\":\"{}\",\"message\":\"m\"}}",
            "{\"v\":1,\"op\":\"audit\",\"audit\":{\"at_ms\":1,\"status\":200,\"who\":"
            "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"peer\":\"p\",\"forwarded\":\"-\","
            "\"what\":\"w\",\"params\":\"{}\",\"message\":\"m\"}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err_clear(&err);
        if (raft_codec_decode_cmd(bad[i], strlen(bad[i]), &d, &err) != -EINVAL)
            fail_msg("accepted: %s", bad[i]);
        assert_true(err.msg[0] != '\0');
    }
}

static void test_audit_state(void **state)
{
    (void)state;
    struct raft_codec_state a = {0};
    raft_codec_state_add_app(&a, "etl", 0, 1);
    for (int i = 0; i < 3; i++) {
        struct audit_record r = sample_audit(i);
        raft_codec_state_add_audit(&a, &r);
    }
    char *text;
    size_t len;
    raft_codec_encode_state(&a, &text, &len);
    struct raft_codec_state d = {0};
    struct err err = {0};
    if (raft_codec_decode_state(text, len, &d, &err) != 0)
        fail_msg("decode: %s", err.msg);
    free(text);
    assert_int_equal(d.apps_len, 1);
    assert_int_equal(d.audit_len, 3);
    for (size_t i = 0; i < 3; i++)
        assert_memory_equal(&d.audit[i], &a.audit[i], sizeof(d.audit[i]));
    raft_codec_state_deinit(&d);
    raft_codec_state_deinit(&a);
    /* A snapshot written before the trail existed still loads. */
    static const char old[] = "{\"v\":1,\"apps\":[{\"key\":\"a\",\"expire_at_ms\":0,"
                              "\"ratio\":1}],\"hosts\":[]}";
    assert_int_equal(raft_codec_decode_state(old, strlen(old), &d, &err), 0);
    assert_int_equal(d.apps_len, 1);
    assert_int_equal(d.audit_len, 0);
    raft_codec_state_deinit(&d);
    static const char bad[] = "{\"v\":1,\"apps\":[],\"hosts\":[],\"audit\":{}}";
    assert_int_equal(raft_codec_decode_state(bad, strlen(bad), &d, &err), -EINVAL);
    assert_string_equal(err.msg, "raft snapshot: \"audit\" must be an array");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_cmd_roundtrip),
            cmocka_unit_test(test_cmd_wire_format),
            cmocka_unit_test(test_cmd_encode_rejects),
            cmocka_unit_test(test_cmd_decode_hostile),
            cmocka_unit_test(test_cmd_decode_mutations),
            cmocka_unit_test(test_state_roundtrip),
            cmocka_unit_test(test_state_exact_bytes),
            cmocka_unit_test(test_state_decode_hostile),
            cmocka_unit_test(test_rule_cmds),
            cmocka_unit_test(test_state_rules),
            cmocka_unit_test(test_audit_cmd_roundtrip),
            cmocka_unit_test(test_audit_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
