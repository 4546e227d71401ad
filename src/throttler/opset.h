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

#include "core/err.h"
#include "core/strmap.h"

#define OPSET_MIN_MS (60ull * 1000)

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

/* For sets whose values begin with their expiry (uint64_t epoch ms):
 * removes every entry expired at @now_ms, that is whose expiry is <= @now_ms
 * (an expiry of 0 is never when @zero_is_never). Returns how many. */
size_t opset_sweep_expired(struct opset *s, uint64_t now_ms, bool zero_is_never);
/* Ends a sync: removes every entry not touched since opset_sync_begin(),
 * but @keep (may be NULL). Returns how many. */
size_t opset_remove_untouched(struct opset *s, const char *keep);
/* In a sync, keeps @key's entry as it is when the expiry a reload brings,
 * @new_ms, is within @slack_ms of the stored @stored_ms (a reload recomputes
 * expiries from whole seconds): marks it touched and returns true. Returns
 * false when the caller must store the new value. */
bool opset_sync_keep(struct opset *s, const char *key, uint64_t stored_ms, uint64_t new_ms,
                     uint64_t slack_ms);
/* Checks that storing @key takes no room (it has an entry, expired or not)
 * or fits, with @pending other new entries on their way, beside the @used
 * entries that count against a limit of @max. Returns 0, or -ENOSPC with
 * @err set to "<cmd>: limit reached: <max> <full> or raise the limit". */
int opset_check_room(const struct opset *s, const char *key, size_t used, size_t max,
                     size_t pending, const char *cmd, const char *full, struct err *err);
/* The checks an operator command's input gets, with messages that begin
 * with the command's name @cmd ("skip-host"): a @noun name ("host") of 1 to
 * @max bytes; a TTL in minutes that is not negative and whose expiry from
 * @now_ms fits in 64 bits. Each returns 0, or -EINVAL with @err set. */
int opset_check_name(const char *cmd, const char *noun, const char *name, size_t max,
                     struct err *err);
int opset_check_ttl(const char *cmd, int64_t ttl_min, uint64_t now_ms, struct err *err);

/* Sets the element at @dst from an entry's @key (a copy the caller keeps)
 * and @value. */
typedef void opset_fill_fn(void *dst, char *key, const void *value);
/* Exports every entry, in key order, as an array of @size-byte elements
 * that @fill sets (caller frees), with every key copied into one block
 * (*@keys, caller frees): 100,000 entries cost two allocations. */
void *opset_export(struct opset *s, size_t size, opset_fill_fn *fill, char **keys);
