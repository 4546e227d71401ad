/* SPDX-License-Identifier: MIT */
/* A string-keyed map with a fixed capacity that forgets its least recently
 * used entry to make room: the bound for every table keyed by names that
 * clients choose. Values are fixed-size blobs owned by the map, zeroed when
 * created. Not thread-safe: one owner thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "core/strmap.h"

struct lru_node;
TAILQ_HEAD(lru_list, lru_node);

/* Called on a value about to be freed (evicted, deleted or at deinit). */
typedef void lru_value_free_fn(void *value);

struct lru {
    struct strmap map;     /* key -> struct lru_node * */
    struct lru_list order; /* most recently used first */
    size_t cap;            /* at most this many entries; 0 keeps none */
    size_t value_size;
    lru_value_free_fn *value_free; /* may be NULL */
    uint64_t evicted;              /* entries dropped to respect cap */
};

/* Initializes an empty map holding at most @cap values of @value_size bytes;
 * @value_free (may be NULL) releases what a value points to. */
void lru_init(struct lru *l, size_t cap, size_t value_size, lru_value_free_fn *value_free);
/* Frees every entry. The map is left empty and usable. */
void lru_deinit(struct lru *l);
/* Returns the value for @key and marks it most recently used. An absent key
 * gets a zeroed value, evicting the least recently used entry when full;
 * *@created (may be NULL) tells which. Returns NULL only when cap is 0. */
void *lru_touch(struct lru *l, const char *key, bool *created);
/* Returns the value for @key or NULL, without changing the order. */
void *lru_get(const struct lru *l, const char *key);
/* Removes @key; returns whether it was present. */
bool lru_del(struct lru *l, const char *key);
size_t lru_len(const struct lru *l);

/* Iteration, most recently used first:
 * `for (struct lru_node *n = lru_first(l); n; n = lru_next(n))`. */
struct lru_node *lru_first(const struct lru *l);
struct lru_node *lru_next(const struct lru_node *n);
const char *lru_node_key(const struct lru_node *n);
void *lru_node_value(struct lru_node *n);

/* Removes every entry for which @doomed returns true; returns how many. */
size_t lru_sweep(struct lru *l, bool (*doomed)(const char *key, void *value, void *arg), void *arg);
