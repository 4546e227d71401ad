/* SPDX-License-Identifier: MIT */
/* Unit tests for core/strmap: the basic contract, deletion across a run that
 * wraps around the end of the table, long random sequences of puts and
 * deletes checked against a brute-force model, and names chosen to collide
 * under an unkeyed hash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/strmap.h"

/* Values stored in the map are addresses of bytes in tags[], never
 * dereferenced; TAG(n) is distinct for each operation number n. */
#define MAX_OPS 200000
static char tags[MAX_OPS + 1];
#define TAG(n) ((void *)&tags[(n)])

static void test_empty(void **state)
{
    (void)state;
    struct strmap m;
    strmap_init(&m);
    assert_null(strmap_get(&m, "a"));
    assert_null(strmap_del(&m, "a"));
    size_t it = 0;
    const char *k;
    void *v;
    assert_false(strmap_next(&m, &it, &k, &v));
    assert_int_equal(m.len, 0);
    strmap_deinit(&m);
    strmap_deinit(&m); /* idempotent: deinit leaves an empty map */
}

/* FNV-1a 64, the unseeded hash the map used before: anyone can compute
 * offline which names share a bucket. */
static uint64_t fnv1a(const char *s)
{
    uint64_t h = 14695981039346656037ull;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        h ^= *p;
        h *= 1099511628211ull;
    }
    return h;
}

/* The child's half of test_key_differs_between_processes. */
static int print_hash(void)
{
    printf("%llu\n", (unsigned long long)strmap_hash("the same name"));
    return 0;
}

/* Runs this executable again with --print-hash; returns what it printed. */
static unsigned long long hash_in_new_process(void)
{
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    pid_t pid = fork();
    assert_true(pid != -1);
    if (pid == 0) {
        dup2(fd[1], STDOUT_FILENO);
        close(fd[0]);
        close(fd[1]);
        char *const argv[] = {"test_strmap", "--print-hash", NULL};
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    close(fd[1]);
    char buf[64] = "";
    size_t len = 0;
    ssize_t n;
    while ((n = read(fd[0], buf + len, sizeof(buf) - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    close(fd[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char *end = NULL;
    unsigned long long h = strtoull(buf, &end, 10);
    assert_true(end != buf && *end == '\n');
    return h;
}

/* Every process draws its own key: a name's hash (and so its bucket) cannot
 * be known outside the process. */
static void test_key_differs_between_processes(void **state)
{
    (void)state;
    unsigned long long a = hash_in_new_process();
    unsigned long long b = hash_in_new_process();
    unsigned long long mine = strmap_hash("the same name");
    assert_true(a != b);
    assert_true(a != mine && b != mine);
    assert_true(mine != fnv1a("the same name"));
}

/* 1,024 names chosen offline to share their FNV-1a bucket in a table of
 * 2,048 slots (what 1,024 keys grow it to) no longer pile up: each lookup
 * stays within a few slots of its home, where FNV-1a made one run of 1,024. */
static void test_chosen_collisions_spread(void **state)
{
    (void)state;
    enum { N = 1024, BITS = 11 };
    char(*keys)[16] = calloc(N, sizeof(*keys));
    assert_non_null(keys);
    size_t found = 0;
    for (unsigned i = 0; found < N; i++) {
        char k[16];
        snprintf(k, sizeof(k), "app-%u", i);
        if ((fnv1a(k) & ((1u << BITS) - 1)) == 0)
            memcpy(keys[found++], k, sizeof(k));
    }
    struct strmap m;
    strmap_init(&m);
    for (size_t i = 0; i < N; i++)
        assert_null(strmap_put(&m, keys[i], TAG(i)));
    assert_int_equal(m.size, (size_t)1 << BITS);
    size_t mask = m.size - 1, worst = 0;
    for (size_t i = 0; i < m.size; i++) {
        if (m.slots[i].key == NULL)
            continue;
        size_t dist = (i - (m.slots[i].hash & mask)) & mask;
        if (dist > worst)
            worst = dist;
    }
    if (worst >= 64)
        fail_msg("a key sits %zu slots from its home: the names collide", worst);
    for (size_t i = 0; i < N; i++)
        assert_ptr_equal(strmap_get(&m, keys[i]), TAG(i));
    for (size_t i = 0; i < N; i += 2)
        assert_ptr_equal(strmap_del(&m, keys[i]), TAG(i));
    for (size_t i = 0; i < N; i++)
        assert_ptr_equal(strmap_get(&m, keys[i]), i % 2 ? TAG(i) : NULL);
    strmap_deinit(&m);
    free(keys);
}

static void test_put_get_overwrite_del(void **state)
{
    (void)state;
    struct strmap m;
    strmap_init(&m);
    char key[] = "alpha";
    assert_null(strmap_put(&m, key, TAG(1)));
    key[0] = 'X'; /* the map keeps its own copy */
    assert_ptr_equal(strmap_get(&m, "alpha"), TAG(1));
    assert_null(strmap_get(&m, "Xlpha"));
    assert_ptr_equal(strmap_put(&m, "alpha", TAG(2)), TAG(1));
    assert_int_equal(m.len, 1);
    assert_ptr_equal(strmap_get(&m, "alpha"), TAG(2));
    assert_null(strmap_put(&m, "", TAG(3))); /* the empty key is a key */
    assert_ptr_equal(strmap_get(&m, ""), TAG(3));
    assert_int_equal(m.len, 2);
    assert_null(strmap_del(&m, "beta"));
    assert_ptr_equal(strmap_del(&m, "alpha"), TAG(2));
    assert_null(strmap_get(&m, "alpha"));
    assert_null(strmap_del(&m, "alpha"));
    assert_int_equal(m.len, 1);
    /* A NULL value is stored like any other. */
    assert_null(strmap_put(&m, "nil", NULL));
    assert_int_equal(m.len, 2);
    strmap_deinit(&m);
}

static void test_next_without_value(void **state)
{
    (void)state;
    struct strmap m;
    strmap_init(&m);
    strmap_put(&m, "only", TAG(7));
    size_t it = 0;
    const char *k = NULL;
    assert_true(strmap_next(&m, &it, &k, NULL));
    assert_string_equal(k, "only");
    assert_false(strmap_next(&m, &it, &k, NULL));
    strmap_deinit(&m);
}

/* Finds the @nth key "k<i>" whose home slot in a table of @size slots is
 * @home, writing it into @buf. */
static void key_with_home(size_t size, size_t home, int nth, char *buf, size_t buf_size)
{
    for (unsigned i = 0;; i++) {
        snprintf(buf, buf_size, "k%u", i);
        if ((strmap_hash(buf) & (size - 1)) == home && nth-- == 0)
            return;
    }
}

static size_t slot_of(const struct strmap *m, const char *key)
{
    for (size_t i = 0; i < m->size; i++) {
        if (m->slots[i].key != NULL && strcmp(m->slots[i].key, key) == 0)
            return i;
    }
    return SIZE_MAX;
}

/* A run that wraps from the last slot to the first: deleting its head must
 * shift every member back, across the wrap, and leave all reachable. */
static void test_delete_across_wrap(void **state)
{
    (void)state;
    struct strmap m;
    char a[16], b[16], c[16], d[16], e[16];
    strmap_init(&m);
    strmap_put(&m, "seed", TAG(0)); /* allocates the first table */
    assert_int_equal(m.size, 16);
    strmap_del(&m, "seed");
    key_with_home(16, 15, 0, a, sizeof(a));
    key_with_home(16, 15, 1, b, sizeof(b));
    key_with_home(16, 15, 2, c, sizeof(c));
    key_with_home(16, 0, 0, d, sizeof(d));
    key_with_home(16, 14, 0, e, sizeof(e));
    strmap_put(&m, a, TAG(1));
    strmap_put(&m, b, TAG(2));
    strmap_put(&m, c, TAG(3));
    strmap_put(&m, d, TAG(4));
    assert_int_equal(m.size, 16);
    assert_int_equal(slot_of(&m, a), 15);
    assert_int_equal(slot_of(&m, b), 0);
    assert_int_equal(slot_of(&m, c), 1);
    assert_int_equal(slot_of(&m, d), 2);

    assert_ptr_equal(strmap_del(&m, a), TAG(1));
    assert_int_equal(slot_of(&m, b), 15);
    assert_int_equal(slot_of(&m, c), 0);
    assert_int_equal(slot_of(&m, d), 1);
    assert_ptr_equal(strmap_get(&m, b), TAG(2));
    assert_ptr_equal(strmap_get(&m, c), TAG(3));
    assert_ptr_equal(strmap_get(&m, d), TAG(4));

    /* A key homed before the deleted slot must not move behind its home. */
    strmap_put(&m, e, TAG(5));
    assert_int_equal(slot_of(&m, e), 14);
    assert_ptr_equal(strmap_del(&m, c), TAG(3));
    assert_int_equal(slot_of(&m, e), 14);
    assert_int_equal(slot_of(&m, b), 15);
    assert_int_equal(slot_of(&m, d), 0);
    assert_ptr_equal(strmap_get(&m, d), TAG(4));
    assert_ptr_equal(strmap_get(&m, e), TAG(5));
    assert_int_equal(m.len, 3);
    strmap_deinit(&m);
}

/* Grows through several sizes and keeps every entry. */
static void test_growth_keeps_entries(void **state)
{
    (void)state;
    struct strmap m;
    char key[32];
    strmap_init(&m);
    for (unsigned i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "host-%u:3306", i);
        assert_null(strmap_put(&m, key, TAG(i + 1)));
        /* Load stays under 3/4, so every probe sequence ends. */
        assert_true(m.len * 4 <= m.size * 3);
    }
    assert_int_equal(m.len, 5000);
    for (unsigned i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "host-%u:3306", i);
        assert_ptr_equal(strmap_get(&m, key), TAG(i + 1));
    }
    strmap_deinit(&m);
}

/* The model: key i of the key space is present iff present[i], with value
 * TAG(vals[i]). */
struct model {
    size_t nkeys;
    char (*keys)[24];
    bool *present;
    unsigned *vals;
    size_t len;
};

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    /* xorshift64*: deterministic across platforms, so failures reproduce. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static void model_check_all(const struct strmap *m, const struct model *md)
{
    assert_int_equal(m->len, md->len);
    for (size_t i = 0; i < md->nkeys; i++) {
        void *v = strmap_get(m, md->keys[i]);
        if (md->present[i])
            assert_ptr_equal(v, TAG(md->vals[i]));
        else
            assert_null(v);
    }
    /* Iteration yields every present key exactly once and nothing else. */
    bool *seen = calloc(md->nkeys + 1, sizeof(*seen));
    assert_non_null(seen);
    size_t it = 0, count = 0;
    const char *k;
    void *v;
    while (strmap_next(m, &it, &k, &v)) {
        /* Keys are "app-<index>/..."; the index leads back to the model. */
        assert_true(strncmp(k, "app-", 4) == 0);
        size_t idx = (size_t)strtoul(k + 4, NULL, 10);
        assert_true(idx < md->nkeys);
        assert_string_equal(k, md->keys[idx]);
        assert_true(md->present[idx]);
        assert_false(seen[idx]);
        assert_ptr_equal(v, TAG(md->vals[idx]));
        seen[idx] = true;
        count++;
    }
    assert_int_equal(count, md->len);
    free(seen);
}

/* Runs @nops random operations over a key space of @nkeys keys; @put_pct of
 * them are puts, the rest deletes (a third of which are lookups only). */
static void run_model(size_t nkeys, unsigned nops, unsigned put_pct, uint64_t seed)
{
    struct strmap m;
    struct model md = {.nkeys = nkeys};
    md.keys = calloc(nkeys, sizeof(*md.keys));
    md.present = calloc(nkeys, sizeof(*md.present));
    md.vals = calloc(nkeys, sizeof(*md.vals));
    assert_non_null(md.keys);
    assert_non_null(md.present);
    assert_non_null(md.vals);
    for (size_t i = 0; i < nkeys; i++)
        snprintf(md.keys[i], sizeof(md.keys[i]), "app-%zu/10.0.%zu.%zu", i, i % 7, i % 13);
    assert_true(nkeys > 0 && nops <= MAX_OPS);
    rng_state = seed;
    strmap_init(&m);

    for (unsigned op = 1; op <= nops; op++) {
        size_t i = (size_t)(rng_next() % nkeys);
        unsigned roll = (unsigned)(rng_next() % 100);
        if (roll < put_pct) {
            void *prev = strmap_put(&m, md.keys[i], TAG(op));
            if (md.present[i]) {
                assert_ptr_equal(prev, TAG(md.vals[i]));
            } else {
                assert_null(prev);
                md.present[i] = true;
                md.len++;
            }
            md.vals[i] = op;
        } else if (roll < put_pct + (100 - put_pct) / 3) {
            void *v = strmap_get(&m, md.keys[i]);
            if (md.present[i])
                assert_ptr_equal(v, TAG(md.vals[i]));
            else
                assert_null(v);
        } else {
            void *v = strmap_del(&m, md.keys[i]);
            if (md.present[i]) {
                assert_ptr_equal(v, TAG(md.vals[i]));
                md.present[i] = false;
                md.len--;
            } else {
                assert_null(v);
            }
        }
        assert_int_equal(m.len, md.len);
        if (op % 257 == 0)
            model_check_all(&m, &md);
    }
    model_check_all(&m, &md);

    /* Empty it completely, then the map must answer "absent" everywhere. */
    for (size_t i = 0; i < nkeys; i++) {
        if (md.present[i]) {
            assert_ptr_equal(strmap_del(&m, md.keys[i]), TAG(md.vals[i]));
            md.present[i] = false;
            md.len--;
        }
    }
    model_check_all(&m, &md);
    strmap_deinit(&m);
    free(md.keys);
    free(md.present);
    free(md.vals);
}

static bool is_odd(const char *key, void *value, void *arg)
{
    (void)key;
    int *calls = arg;
    (*calls)++;
    return *(int *)value % 2 == 1;
}

static int freed;

static void count_free(void *value)
{
    freed++;
    free(value);
}

/* delete_if removes exactly the doomed entries, even when deleting shifts
 * entries the sweep has not reached yet; deinit_values frees every value. */
static void test_delete_if_and_deinit_values(void **state)
{
    (void)state;
    struct strmap m;
    strmap_init(&m);
    for (int i = 0; i < 1000; i++) {
        char k[16];
        snprintf(k, sizeof(k), "k%d", i);
        int *v = malloc(sizeof(*v));
        *v = i;
        strmap_put(&m, k, v);
    }
    int calls = 0;
    freed = 0;
    assert_int_equal(strmap_delete_if(&m, is_odd, &calls, count_free), 500);
    assert_int_equal(calls, 1000);
    assert_int_equal(freed, 500);
    assert_int_equal(m.len, 500);
    for (int i = 0; i < 1000; i++) {
        char k[16];
        snprintf(k, sizeof(k), "k%d", i);
        int *v = strmap_get(&m, k);
        if (i % 2 == 1)
            assert_null(v);
        else
            assert_int_equal(*v, i);
    }
    assert_int_equal(strmap_delete_if(&m, is_odd, &calls, count_free), 0);
    freed = 0;
    strmap_deinit_values(&m, count_free);
    assert_int_equal(freed, 500);
    assert_int_equal(m.len, 0);
    assert_null(m.slots);
}

static void test_model_tiny(void **state)
{
    (void)state;
    /* At most 12 keys live: the table stays at 16 slots, so runs wrap. */
    run_model(12, 200000, 50, 0x9e3779b97f4a7c15ull);
}

static void test_model_small_churn(void **state)
{
    (void)state;
    run_model(40, 200000, 50, 0x2545f4914f6cdd1dull);
}

static void test_model_grow_heavy(void **state)
{
    (void)state;
    run_model(3000, 150000, 75, 0x123456789abcdefull);
}

static void test_model_delete_heavy(void **state)
{
    (void)state;
    run_model(500, 150000, 40, 0xdeadbeefcafef00dull);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--print-hash") == 0)
        return print_hash();
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_empty),
            cmocka_unit_test(test_key_differs_between_processes),
            cmocka_unit_test(test_chosen_collisions_spread),
            cmocka_unit_test(test_put_get_overwrite_del),
            cmocka_unit_test(test_next_without_value),
            cmocka_unit_test(test_delete_across_wrap),
            cmocka_unit_test(test_growth_keeps_entries),
            cmocka_unit_test(test_delete_if_and_deinit_values),
            cmocka_unit_test(test_model_tiny),
            cmocka_unit_test(test_model_small_churn),
            cmocka_unit_test(test_model_grow_heavy),
            cmocka_unit_test(test_model_delete_heavy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
