/* SPDX-License-Identifier: MIT */
/* Keyed digests make every comparison the same length whatever the secrets'
 * lengths, and sodium_memcmp() compares in constant time; the loop never
 * stops early. */
#include "core/token.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/hash.h"
#include "core/xalloc.h"

#define DIGEST_SIZE crypto_generichash_BYTES

struct token {
    char name[TOKEN_NAME_MAX + 1];
    unsigned char digest[DIGEST_SIZE];
};

struct token_set {
    unsigned char key[crypto_generichash_KEYBYTES];
    struct token *v;
    size_t len;
};

static void digest(const struct token_set *s, const char *secret, unsigned char out[DIGEST_SIZE])
{
    crypto_generichash(out, DIGEST_SIZE, (const unsigned char *)secret, strlen(secret), s->key,
                       sizeof(s->key));
}

struct token_set *token_set_new(void)
{
    hash_init(); /* initializes libsodium */
    struct token_set *s = xcalloc(1, sizeof(*s));
    randombytes_buf(s->key, sizeof(s->key));
    return s;
}

void token_set_add(struct token_set *s, const char *name, const char *secret)
{
    s->v = xrealloc(s->v, (s->len + 1) * sizeof(*s->v));
    struct token *t = &s->v[s->len++];
    memset(t, 0, sizeof(*t));
    size_t n = strnlen(name, TOKEN_NAME_MAX);
    memcpy(t->name, name, n);
    digest(s, secret, t->digest);
}

size_t token_set_len(const struct token_set *s)
{
    return s != NULL ? s->len : 0;
}

const char *token_set_match(const struct token_set *s, const char *presented)
{
    if (s == NULL || presented == NULL)
        return NULL;
    unsigned char d[DIGEST_SIZE];
    digest(s, presented, d);
    size_t found = SIZE_MAX;
    for (size_t i = 0; i < s->len; i++) {
        size_t same = (size_t)(sodium_memcmp(d, s->v[i].digest, DIGEST_SIZE) == 0);
        /* Record the match without a branch the comparison could steer. */
        size_t mask = (size_t)0 - same;
        found = (i & mask) | (found & ~mask);
    }
    sodium_memzero(d, sizeof(d));
    return found == SIZE_MAX ? NULL : s->v[found].name;
}

void token_set_free(struct token_set *s)
{
    if (s == NULL)
        return;
    if (s->v != NULL)
        sodium_memzero(s->v, s->len * sizeof(*s->v));
    sodium_memzero(s->key, sizeof(s->key));
    free(s->v);
    free(s);
}
