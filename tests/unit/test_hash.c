/* SPDX-License-Identifier: MIT */
/* core/hash: SipHash-2-4 against the reference vectors of its authors, and
 * the process key drawn once even when threads race to use it first. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_reference_vectors),
            cmocka_unit_test(test_process_key_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
