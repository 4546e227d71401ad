/* SPDX-License-Identifier: MIT */
/* A string-keyed hash map (open addressing, linear probing, backward-shift
 * deletion). Keys are copied and owned by the map; values are borrowed
 * pointers the caller manages. Not thread-safe: one owner thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct strmap_slot {
    char *key;
    void *value;
    size_t hash;
};

struct strmap {
    struct strmap_slot *slots;
    size_t size; /* capacity, a power of two or 0 */
    size_t len;  /* used slots */
};

/* Initializes an empty map (no allocation). */
void strmap_init(struct strmap *m);
/* Frees the keys and the table; values are not touched. */
void strmap_deinit(struct strmap *m);
/* Calls @free_value on every value, then strmap_deinit(). */
void strmap_deinit_values(struct strmap *m, void (*free_value)(void *value));
/* Returns the value for @key or NULL. */
void *strmap_get(const struct strmap *m, const char *key);
/* Sets @key to @value; returns the previous value or NULL. */
void *strmap_put(struct strmap *m, const char *key, void *value);
/* Removes @key; returns its value or NULL. */
void *strmap_del(struct strmap *m, const char *key);
/* Iteration: `for (size_t i = 0; strmap_next(m, &i, &k, &v);)`. The map must
 * not change during iteration (deletion shifts entries); collect keys first. */
bool strmap_next(const struct strmap *m, size_t *iter, const char **key, void **value);
/* Removes every entry for which @doomed returns true, passing its value to
 * @free_value (NULL: the value is left alone); returns how many went. Safe
 * where a loop over strmap_next() deleting as it goes is not. */
size_t strmap_delete_if(struct strmap *m, bool (*doomed)(const char *key, void *value, void *arg),
                        void *arg, void (*free_value)(void *value));
/* Hash of @s: hash_str() (SipHash-2-4 under the process key), so the same
 * string hashes differently in every process. */
size_t strmap_hash(const char *s);
