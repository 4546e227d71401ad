/* SPDX-License-Identifier: MIT */
/* Hashing: keyed SipHash for tables, FNV-1a for persisted ids. The key is
 * written once, inside pthread_once, which also orders that write before
 * every later read of it in any thread. */
#include "core/hash.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static unsigned char process_key[HASH_KEY_SIZE];

static void key_init(void)
{
    if (sodium_init() < 0) {
        static const char msg[] = "fatal: libsodium cannot initialize: no hash key\n";
        (void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
        abort();
    }
    randombytes_buf(process_key, sizeof(process_key));
}

void hash_init(void)
{
    pthread_once(&key_once, key_init);
}

uint64_t hash_bytes_keyed(const unsigned char key[HASH_KEY_SIZE], const void *data, size_t len)
{
    unsigned char out[crypto_shorthash_BYTES];
    crypto_shorthash(out, data, len, key);
    uint64_t h = 0;
    for (size_t i = 0; i < sizeof(out); i++)
        h |= (uint64_t)out[i] << (8 * i);
    return h;
}

uint64_t hash_str(const char *s)
{
    hash_init();
    return hash_bytes_keyed(process_key, s, strlen(s));
}

uint64_t hash_stable64(const void *data, size_t len)
{
    /* FNV-1a 64: offset basis and prime from the FNV reference. Changing
     * either changes every raft node id already written to a data dir. */
    const unsigned char *p = data;
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}
