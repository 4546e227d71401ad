/* SPDX-License-Identifier: MIT */
/* Unit tests for throttler/opset: lookup, iteration in key order after any
 * mix of inserts and removals (one by one and in bulk), removal in one
 * pass, and replacing the set by touching what a reload names. Compared
 * against a plain sorted array of what should be there. Also the helpers
 * both operator sets share: expiry sweeps, reload sync, the room, name and
 * TTL checks, and exporting entries with their keys in one block. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "throttler/opset.h"

struct val {
    uint64_t n;
    double d;
};

static int setup(void **state)
{
    static struct opset s;
    opset_init(&s, sizeof(struct val));
    *state = &s;
    return 0;
}

static int teardown(void **state)
{
    opset_deinit(*state);
    return 0;
}

/* Checks that iteration yields exactly the keys "k<i>" with present[i], in
 * strcmp order, each with its value n == i. */
static void expect_set(struct opset *s, const bool *present, size_t n)
{
    char **want = calloc(n, sizeof(*want));
    size_t nwant = 0;
    char key[32];
    for (size_t i = 0; i < n; i++) {
        if (!present[i])
            continue;
        snprintf(key, sizeof(key), "k%zu", i);
        want[nwant++] = strdup(key);
    }
    /* An insertion sort is plenty for a test and obviously right. */
    for (size_t i = 1; i < nwant; i++)
        for (size_t j = i; j > 0 && strcmp(want[j - 1], want[j]) > 0; j--) {
            char *x = want[j];
            want[j] = want[j - 1];
            want[j - 1] = x;
        }
    assert_int_equal(opset_len(s), nwant);
    size_t got = 0;
    const char *k;
    void *v;
    for (size_t i = 0; opset_next(s, &i, &k, &v); got++) {
        assert_true(got < nwant);
        assert_string_equal(k, want[got]);
        assert_int_equal(((struct val *)v)->n, strtoull(k + 1, NULL, 10));
        assert_ptr_equal(opset_get(s, k), v);
    }
    assert_int_equal(got, nwant);
    for (size_t i = 0; i < nwant; i++)
        free(want[i]);
    free(want);
}

static void put(struct opset *s, size_t i)
{
    char key[32];
    snprintf(key, sizeof(key), "k%zu", i);
    bool created = false;
    struct val *v = opset_put(s, key, &created);
    assert_non_null(v);
    if (created)
        assert_int_equal(v->n, 0); /* zero-filled */
    v->n = i;
}

static bool del(struct opset *s, size_t i)
{
    char key[32];
    snprintf(key, sizeof(key), "k%zu", i);
    return opset_del(s, key);
}

static void test_basics(void **state)
{
    struct opset *s = *state;
    assert_int_equal(opset_len(s), 0);
    assert_null(opset_get(s, "k1"));
    assert_false(opset_del(s, "k1"));
    assert_false(opset_touch(s, "k1"));
    bool created = false;
    struct val *v = opset_put(s, "k1", &created);
    assert_true(created);
    v->n = 1;
    v->d = 0.5;
    struct val *again = opset_put(s, "k1", &created);
    assert_false(created);
    assert_ptr_equal(again, v);
    assert_true(again->d == 0.5);
    /* Values are aligned for any type. */
    assert_int_equal((uintptr_t)v % _Alignof(max_align_t), 0);
    /* A key of any length, the empty one included. */
    char long_key[600];
    memset(long_key, 'x', sizeof(long_key) - 1);
    long_key[sizeof(long_key) - 1] = '\0';
    opset_put(s, long_key, NULL);
    opset_put(s, "", NULL);
    assert_non_null(opset_get(s, long_key));
    assert_non_null(opset_get(s, ""));
    const char *k;
    void *val;
    size_t i = 0;
    assert_true(opset_next(s, &i, &k, &val));
    assert_string_equal(k, "");
    assert_true(opset_del(s, long_key));
    assert_true(opset_del(s, ""));
    assert_int_equal(opset_len(s), 1);
    opset_clear(s);
    assert_int_equal(opset_len(s), 0);
    assert_null(opset_get(s, "k1"));
    put(s, 7);
    bool present[8] = {[7] = true};
    expect_set(s, present, 8);
}

/* Random puts and deletes, with iterations in between so that both the
 * one-by-one insertion and the sort-and-merge paths run on a sorted prefix. */
static void test_random_order(void **state)
{
    struct opset *s = *state;
    enum { N = 3000 };
    static bool present[N];
    memset(present, 0, sizeof(present));
    srand(7);
    for (int round = 0; round < 60; round++) {
        /* Rounds alternate between a few changes and a burst. */
        int changes = round % 3 == 0 ? 400 : 1 + rand() % 6;
        for (int c = 0; c < changes; c++) {
            size_t i = (size_t)rand() % N;
            if (rand() % 3 == 0) {
                assert_int_equal(del(s, i), present[i]);
                present[i] = false;
            } else {
                put(s, i);
                present[i] = true;
            }
        }
        expect_set(s, present, N);
    }
}

static bool is_odd(const char *key, const void *value, bool touched, void *arg)
{
    (void)key;
    (void)touched;
    (*(size_t *)arg)++;
    return ((const struct val *)value)->n % 2 == 1;
}

static void test_remove_if(void **state)
{
    struct opset *s = *state;
    enum { N = 500 };
    bool present[N];
    /* Half sorted by an iteration, half appended after it. */
    for (size_t i = 0; i < N; i++) {
        put(s, i);
        present[i] = true;
        if (i == N / 2)
            expect_set(s, present, i + 1);
    }
    size_t seen = 0;
    assert_int_equal(opset_remove_if(s, is_odd, &seen), N / 2);
    assert_int_equal(seen, N);
    for (size_t i = 0; i < N; i++)
        present[i] = i % 2 == 0;
    expect_set(s, present, N);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(del(s, i), present[i]);
    assert_int_equal(opset_len(s), 0);
}

static bool is_untouched(const char *key, const void *value, bool touched, void *arg)
{
    (void)key;
    (void)value;
    (void)arg;
    return !touched;
}

static void test_sync(void **state)
{
    struct opset *s = *state;
    enum { N = 100 };
    bool present[N] = {false};
    for (size_t i = 0; i < 60; i++) {
        put(s, i);
        present[i] = true;
    }
    /* A reload names 30..89: 0..29 go, 60..89 come, 30..59 stay. */
    opset_sync_begin(s);
    char key[32];
    for (size_t i = 30; i < 90; i++) {
        snprintf(key, sizeof(key), "k%zu", i);
        if (i < 45) {
            assert_true(opset_touch(s, key));
        } else {
            put(s, i);
            present[i] = true;
        }
    }
    assert_int_equal(opset_remove_if(s, is_untouched, NULL), 30);
    for (size_t i = 0; i < 30; i++)
        present[i] = false;
    expect_set(s, present, N);
    /* A new sync: nothing is touched until named again. */
    opset_sync_begin(s);
    assert_int_equal(opset_remove_if(s, is_untouched, NULL), 60);
    assert_int_equal(opset_len(s), 0);
}

/* Entries whose value begins with an expiry, as app throttles and skipped
 * hosts store them. */
static void put_expiring(struct opset *s, const char *key, uint64_t expire_at_ms)
{
    struct val *v = opset_put(s, key, NULL);
    v->n = expire_at_ms;
}

static void test_sweep_and_sync_helpers(void **state)
{
    struct opset *s = *state;
    put_expiring(s, "never", 0);
    put_expiring(s, "early", 100);
    put_expiring(s, "late", 200);
    assert_int_equal(opset_sweep_expired(s, 99, true), 0);
    assert_int_equal(opset_sweep_expired(s, 100, true), 1); /* at its expiry */
    assert_null(opset_get(s, "early"));
    assert_non_null(opset_get(s, "never"));
    /* Without "0 is never", an expiry of 0 has passed. */
    assert_int_equal(opset_sweep_expired(s, 150, false), 1);
    assert_null(opset_get(s, "never"));

    opset_sync_begin(s);
    put_expiring(s, "new", 500);
    assert_false(opset_sync_keep(s, "late", 200, 1701, 1500));
    assert_true(opset_sync_keep(s, "late", 200, 1700, 1500));
    assert_int_equal(opset_remove_untouched(s, "new"), 0);
    opset_sync_begin(s);
    assert_int_equal(opset_remove_untouched(s, "new"), 1);
    assert_non_null(opset_get(s, "new"));
}

static void test_input_checks(void **state)
{
    struct opset *s = *state;
    struct err err = {0};
    put_expiring(s, "a", 0);
    put_expiring(s, "b", 0);
    /* Two used of three: one more fits, two do not; a key already there
     * takes no room. */
    assert_int_equal(opset_check_room(s, "c", 2, 3, 0, "cmd", "things (Max)", &err), 0);
    assert_int_equal(opset_check_room(s, "c", 2, 3, 1, "cmd", "things (Max)", &err), -ENOSPC);
    assert_string_equal(err.msg, "cmd: limit reached: 3 things (Max) or raise the limit");
    assert_int_equal(opset_check_room(s, "a", 3, 3, 5, "cmd", "things (Max)", &err), 0);
    assert_int_equal(opset_check_name("cmd", "host", "", 4, &err), -EINVAL);
    assert_string_equal(err.msg, "cmd: empty host name");
    assert_int_equal(opset_check_name("cmd", "host", "abcde", 4, &err), -EINVAL);
    assert_string_equal(err.msg, "cmd: host name longer than 4 bytes");
    assert_int_equal(opset_check_name("cmd", "host", "abcd", 4, &err), 0);
    assert_int_equal(opset_check_ttl("cmd", -1, 0, &err), -EINVAL);
    assert_string_equal(err.msg, "cmd: negative ttl -1");
    assert_int_equal(opset_check_ttl("cmd", 0, UINT64_MAX, &err), 0);
    assert_int_equal(opset_check_ttl("cmd", 1, UINT64_MAX - OPSET_MIN_MS, &err), 0);
    assert_int_equal(opset_check_ttl("cmd", 1, UINT64_MAX - OPSET_MIN_MS + 1, &err), -EINVAL);
    assert_string_equal(err.msg, "cmd: ttl 1 minutes is too large");
}

struct exported {
    const char *key;
    uint64_t n;
};

static void fill(void *dst, char *key, const void *value)
{
    *(struct exported *)dst = (struct exported){key, ((const struct val *)value)->n};
}

static void test_export(void **state)
{
    struct opset *s = *state;
    char *block = NULL;
    struct exported *v = opset_export(s, sizeof(*v), fill, &block);
    free(v);
    free(block);
    /* Appended out of order: exported in key order, keys in one block. */
    const char *keys[] = {"m", "b", "zz", "a"};
    for (size_t i = 0; i < 4; i++)
        put_expiring(s, keys[i], i);
    v = opset_export(s, sizeof(*v), fill, &block);
    const char *want[] = {"a", "b", "m", "zz"};
    const uint64_t want_n[] = {3, 1, 0, 2};
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(v[i].key, want[i]);
        assert_int_equal(v[i].n, want_n[i]);
        assert_true(v[i].key >= block && v[i].key < block + 2 + 2 + 2 + 3);
    }
    free(v);
    free(block);
}

int main(void)
{
#define TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
            TEST(test_basics), TEST(test_random_order),           TEST(test_remove_if),
            TEST(test_sync),   TEST(test_sweep_and_sync_helpers), TEST(test_input_checks),
            TEST(test_export),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
