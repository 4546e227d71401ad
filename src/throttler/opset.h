/* SPDX-License-Identifier: MIT */
/* A set of operator entries (app throttles, skipped hosts) keyed by name,
 * built for 100,000 entries: hashed lookup, iteration in name order without
 * sorting the whole set after each change, removal of many entries in one
 * pass, and replacing the whole set from a reload by touching what stays.
 * Each entry carries a fixed-size value the owner defines. Loop thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/strmap.h"

struct opset_item;

struct opset {
    struct strmap map;     /* key -> struct opset_item * */
    struct opset_item **v; /* every item: v[0..sorted) in key order, the rest appended */
    size_t len;
    size_t cap;
    size_t sorted;
    size_t value_size;
    uint64_t gen; /* the current sync generation */
};

/* An empty set whose values are @value_size bytes. */
void opset_init(struct opset *s, size_t value_size);
/* Frees every entry; the set must be initialized again before use. */
void opset_deinit(struct opset *s);
/* Drops every entry. */
void opset_clear(struct opset *s);
size_t opset_len(const struct opset *s);
/* The value of @key, or NULL. Valid until the entry is removed. */
void *opset_get(const struct opset *s, const char *key);
/* The value of @key, created zero-filled when missing (*@created then says
 * so; may be NULL). The entry counts as touched in the current sync. */
void *opset_put(struct opset *s, const char *key, bool *created);
/* Marks @key's entry touched in the current sync; false if there is none. */
bool opset_touch(struct opset *s, const char *key);
/* Removes @key; false if it had no entry. */
bool opset_del(struct opset *s, const char *key);
/* Iterates in key order (strcmp):
 * `for (size_t i = 0; opset_next(s, &i, &key, &value);)`. The set must not
 * change during the iteration. */
bool opset_next(struct opset *s, size_t *i, const char **key, void **value);
/* Starts a sync: from now on only opset_put() and opset_touch() mark
 * entries touched, so opset_remove_if() can drop the ones a reload did not
 * name. */
void opset_sync_begin(struct opset *s);
/* Removes, in one pass, every entry for which @doomed returns true (it is
 * told whether the entry was touched since opset_sync_begin()). Returns how
 * many. @doomed must not change the set. */
size_t opset_remove_if(struct opset *s,
                       bool (*doomed)(const char *key, const void *value, bool touched, void *arg),
                       void *arg);

/* Sets the element at @dst from an entry's @key (a copy the caller keeps)
 * and @value. */
typedef void opset_fill_fn(void *dst, char *key, const void *value);
/* Exports every entry, in key order, as an array of @size-byte elements
 * that @fill sets (caller frees), with every key copied into one block
 * (*@keys, caller frees): 100,000 entries cost two allocations. */
void *opset_export(struct opset *s, size_t size, opset_fill_fn *fill, char **keys);
