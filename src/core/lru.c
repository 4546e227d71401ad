/* SPDX-License-Identifier: MIT */
/* Capped LRU map: a strmap for lookups plus a TAILQ in recency order. Each
 * node holds its value and a copy of its key in one allocation, so an
 * eviction is one map deletion and one free. Owner thread only. */
#include "core/lru.h"

#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"

struct lru_node {
    TAILQ_ENTRY(lru_node) link;
    char *key; /* points past the value, inside this allocation */
    alignas(max_align_t) unsigned char value[];
};

void lru_init(struct lru *l, size_t cap, size_t value_size, lru_value_free_fn *value_free)
{
    strmap_init(&l->map);
    TAILQ_INIT(&l->order);
    l->cap = cap;
    l->value_size = value_size;
    l->value_free = value_free;
    l->evicted = 0;
}

static void node_free(struct lru *l, struct lru_node *n)
{
    if (l->value_free != NULL)
        l->value_free(n->value);
    free(n);
}

void lru_deinit(struct lru *l)
{
    struct lru_node *n;
    while ((n = TAILQ_FIRST(&l->order)) != NULL) {
        TAILQ_REMOVE(&l->order, n, link);
        node_free(l, n);
    }
    strmap_deinit(&l->map);
}

static void unlink_node(struct lru *l, struct lru_node *n)
{
    strmap_del(&l->map, n->key);
    TAILQ_REMOVE(&l->order, n, link);
    node_free(l, n);
}

void *lru_touch(struct lru *l, const char *key, bool *created)
{
    if (created != NULL)
        *created = false;
    struct lru_node *n = strmap_get(&l->map, key);
    if (n != NULL) {
        if (n != TAILQ_FIRST(&l->order)) {
            TAILQ_REMOVE(&l->order, n, link);
            TAILQ_INSERT_HEAD(&l->order, n, link);
        }
        return n->value;
    }
    if (l->cap == 0)
        return NULL;
    if (l->map.len >= l->cap) {
        unlink_node(l, TAILQ_LAST(&l->order, lru_list));
        l->evicted++;
    }
    /* Round the value up so the key after it never overlaps padding. */
    size_t vsize = (l->value_size + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
    size_t klen = strlen(key);
    n = xcalloc(1, sizeof(*n) + vsize + klen + 1);
    n->key = (char *)n->value + vsize;
    memcpy(n->key, key, klen + 1);
    strmap_put(&l->map, key, n);
    TAILQ_INSERT_HEAD(&l->order, n, link);
    if (created != NULL)
        *created = true;
    return n->value;
}

void *lru_get(const struct lru *l, const char *key)
{
    struct lru_node *n = strmap_get(&l->map, key);
    return n != NULL ? n->value : NULL;
}

bool lru_del(struct lru *l, const char *key)
{
    struct lru_node *n = strmap_get(&l->map, key);
    if (n == NULL)
        return false;
    unlink_node(l, n);
    return true;
}

size_t lru_len(const struct lru *l)
{
    return l->map.len;
}

struct lru_node *lru_first(const struct lru *l)
{
    return TAILQ_FIRST(&l->order);
}

struct lru_node *lru_next(const struct lru_node *n)
{
    return TAILQ_NEXT(n, link);
}

const char *lru_node_key(const struct lru_node *n)
{
    return n->key;
}

void *lru_node_value(struct lru_node *n)
{
    return n->value;
}

size_t lru_sweep(struct lru *l, bool (*doomed)(const char *key, void *value, void *arg), void *arg)
{
    size_t removed = 0;
    struct lru_node *n = TAILQ_FIRST(&l->order);
    while (n != NULL) {
        struct lru_node *next = TAILQ_NEXT(n, link);
        if (doomed(n->key, n->value, arg)) {
            unlink_node(l, n);
            removed++;
        }
        n = next;
    }
    return removed;
}
