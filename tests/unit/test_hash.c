/* SPDX-License-Identifier: MIT */
/* core/hash: SipHash-2-4 against the reference vectors of its authors, the
 * process key drawn once even when threads race to use it first, and the
 * stable hash pinned to the FNV-1a values raft data dirs already hold. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/hash.h"

/* Key 00 01 .. 0f; message i bytes 00 01 .. i-1; 64-bit output read as
 * little-endian (vectors from the SipHash paper's reference code). */
static void test_reference_vectors(void **state)
{
    (void)state;
    unsigned char key[HASH_KEY_SIZE], msg[16];
    for (unsigned i = 0; i < sizeof(key); i++)
        key[i] = (unsigned char)i;
    for (unsigned i = 0; i < sizeof(msg); i++)
        msg[i] = (unsigned char)i;
    assert_true(hash_bytes_keyed(key, msg, 0) == 0x726fdb47dd0e0e31ull);
    assert_true(hash_bytes_keyed(key, msg, 1) == 0x74f839c593dc67fdull);
    assert_true(hash_bytes_keyed(key, msg, 8) == 0x93f5f5799a932462ull);
    assert_true(hash_bytes_keyed(key, msg, 15) == 0xa129ca6149be45e5ull);
}

static void *hash_in_thread(void *arg)
{
    uint64_t *out = arg;
    *out = hash_str("racing");
    return NULL;
}

static void test_process_key_once(void **state)
{
    (void)state;
    enum { N = 8 };
    pthread_t th[N];
    uint64_t got[N];
    for (int i = 0; i < N; i++)
        assert_int_equal(pthread_create(&th[i], NULL, hash_in_thread, &got[i]), 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    hash_init();
    for (int i = 0; i < N; i++)
        assert_true(got[i] == hash_str("racing"));
    assert_true(hash_str("racing") != hash_str("racinh"));
    assert_true(hash_str("") == hash_str(""));
}

/* FNV-1a 64 vectors from the FNV reference test suite. */
static void test_stable_vectors(void **state)
{
    (void)state;
    assert_true(hash_stable64("", 0) == 0xcbf29ce484222325ull);
    assert_true(hash_stable64("a", 1) == 0xaf63dc4c8601ec8cull);
    assert_true(hash_stable64("foobar", 6) == 0x85944171f73967e8ull);
    /* Bytes, not a string: a NUL inside counts. */
    assert_true(hash_stable64("a\0b", 3) != hash_stable64("a", 1));
}

/* Raft node ids are hash_stable64() of the canonical address and are written
 * to raft data dirs: these are the ids earlier versions derived, and a node
 * that computed another would not find itself in its own configuration. */
static void test_stable_raft_ids(void **state)
{
    (void)state;
    static const struct {
        const char *addr;
        uint64_t id;
    } ids[] = {
            {"127.0.0.1:10008", 18063654059432044575ull},
            {"10.0.0.1:9888", 2005696598465713204ull},
            {"10.0.0.2:9888", 4805880908944321659ull},
            {"192.168.1.20:10008", 4044846934153576042ull},
    };
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
        assert_true(hash_stable64(ids[i].addr, strlen(ids[i].addr)) == ids[i].id);
    /* The same in every process: no key is involved. */
    hash_init();
    assert_true(hash_stable64("127.0.0.1:10008", 15) != hash_str("127.0.0.1:10008"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_reference_vectors),
            cmocka_unit_test(test_process_key_once),
            cmocka_unit_test(test_stable_vectors),
            cmocka_unit_test(test_stable_raft_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
