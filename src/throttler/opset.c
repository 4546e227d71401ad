/* SPDX-License-Identifier: MIT */
/* Operator entries keyed by name (see opset.h). Loop thread. Invariants:
 * v holds every item exactly once; v[0..sorted) is in strcmp order; the map
 * and v always name the same items; an item's key never moves, because it
 * lives in the item's own allocation. */
#include "throttler/opset.h"

#include <errno.h>
#include <inttypes.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"

struct opset_item {
    uint64_t gen;        /* the sync generation that last touched it */
    const char *key;     /* right after the value, in the same allocation */
    max_align_t value[]; /* value_size bytes */
};

/* Up to this many unsorted items are inserted one by one (binary search and
 * a move of pointers); more are sorted among themselves and merged. */
#define INSERT_ONE_BY_ONE_MAX 8

static size_t value_bytes(const struct opset *s)
{
    return (s->value_size + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
}

void opset_init(struct opset *s, size_t value_size)
{
    memset(s, 0, sizeof(*s));
    strmap_init(&s->map);
    s->value_size = value_size;
}

void opset_clear(struct opset *s)
{
    for (size_t i = 0; i < s->len; i++)
        free(s->v[i]);
    strmap_deinit(&s->map);
    strmap_init(&s->map);
    s->len = 0;
    s->sorted = 0;
}

void opset_deinit(struct opset *s)
{
    opset_clear(s);
    strmap_deinit(&s->map);
    free(s->v);
    s->v = NULL;
    s->cap = 0;
}

size_t opset_len(const struct opset *s)
{
    return s->len;
}

void *opset_get(const struct opset *s, const char *key)
{
    struct opset_item *it = strmap_get(&s->map, key);
    return it != NULL ? it->value : NULL;
}

void *opset_put(struct opset *s, const char *key, bool *created)
{
    struct opset_item *it = strmap_get(&s->map, key);
    if (created != NULL)
        *created = it == NULL;
    if (it != NULL) {
        it->gen = s->gen;
        return it->value;
    }
    size_t vb = value_bytes(s), klen = strlen(key);
    it = xmalloc(sizeof(*it) + vb + klen + 1);
    memset(it->value, 0, vb);
    char *k = (char *)it->value + vb;
    memcpy(k, key, klen + 1);
    it->key = k;
    it->gen = s->gen;
    if (s->len == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        /* An array of pointers is intended. */
        s->v = xrealloc(s->v, s->cap * sizeof(*s->v)); // NOLINT(bugprone-sizeof-expression)
    }
    s->v[s->len++] = it;
    strmap_put(&s->map, it->key, it);
    return it->value;
}

bool opset_touch(struct opset *s, const char *key)
{
    struct opset_item *it = strmap_get(&s->map, key);
    if (it == NULL)
        return false;
    it->gen = s->gen;
    return true;
}

/* The first index of v[0..n) whose key is not below @key. */
static size_t lower_bound(struct opset_item *const *v, size_t n, const char *key)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(v[mid]->key, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int cmp_items(const void *a, const void *b)
{
    const struct opset_item *x = *(struct opset_item *const *)a;
    const struct opset_item *y = *(struct opset_item *const *)b;
    return strcmp(x->key, y->key);
}

/* Brings the appended items into order: a few are inserted one by one, many
 * (a reload, a restore) are sorted among themselves and merged, so the cost
 * follows what changed rather than the size of the set. */
static void sort_tail(struct opset *s)
{
    size_t k = s->len - s->sorted;
    if (k == 0)
        return;
    if (k <= INSERT_ONE_BY_ONE_MAX) {
        while (s->sorted < s->len) {
            struct opset_item *x = s->v[s->sorted];
            size_t pos = lower_bound(s->v, s->sorted, x->key);
            memmove(s->v + pos + 1, s->v + pos,
                    (s->sorted - pos) * sizeof(*s->v)); // NOLINT(bugprone-sizeof-expression)
            s->v[pos] = x;
            s->sorted++;
        }
        return;
    }
    /* Arrays of pointers are intended here and below. */
    qsort(s->v + s->sorted, k, sizeof(*s->v), cmp_items);     // NOLINT(bugprone-sizeof-expression)
    struct opset_item **out = xmalloc(s->cap * sizeof(*out)); // NOLINT(bugprone-sizeof-expression)
    size_t a = 0, b = s->sorted, o = 0;
    while (a < s->sorted && b < s->len)
        out[o++] = strcmp(s->v[a]->key, s->v[b]->key) < 0 ? s->v[a++] : s->v[b++];
    while (a < s->sorted)
        out[o++] = s->v[a++];
    while (b < s->len)
        out[o++] = s->v[b++];
    free(s->v);
    s->v = out;
    s->sorted = s->len;
}

bool opset_del(struct opset *s, const char *key)
{
    struct opset_item *it = strmap_get(&s->map, key);
    if (it == NULL)
        return false;
    size_t i = lower_bound(s->v, s->sorted, it->key);
    if (i >= s->sorted || s->v[i] != it) {
        for (i = s->sorted; i < s->len && s->v[i] != it; i++)
            ;
    } else {
        s->sorted--;
    }
    memmove(s->v + i, s->v + i + 1,
            (s->len - i - 1) * sizeof(*s->v)); // NOLINT(bugprone-sizeof-expression)
    s->len--;
    strmap_del(&s->map, it->key);
    free(it);
    return true;
}

bool opset_next(struct opset *s, size_t *i, const char **key, void **value)
{
    if (*i == 0)
        sort_tail(s);
    if (*i >= s->len)
        return false;
    struct opset_item *it = s->v[(*i)++];
    *key = it->key;
    *value = it->value;
    return true;
}

void opset_sync_begin(struct opset *s)
{
    s->gen++;
}

size_t opset_remove_if(struct opset *s,
                       bool (*doomed)(const char *key, const void *value, bool touched, void *arg),
                       void *arg)
{
    size_t j = 0, sorted = 0, removed = 0;
    for (size_t i = 0; i < s->len; i++) {
        struct opset_item *it = s->v[i];
        if (doomed(it->key, it->value, it->gen == s->gen, arg)) {
            strmap_del(&s->map, it->key);
            free(it);
            removed++;
            continue;
        }
        /* Survivors keep their relative order, so the sorted prefix stays
         * sorted. */
        s->v[j++] = it;
        if (i < s->sorted)
            sorted++;
    }
    s->len = j;
    s->sorted = sorted;
    return removed;
}

void *opset_export(struct opset *s, size_t size, opset_fill_fn *fill, char **keys)
{
    size_t bytes = 0, o = 0, n = 0;
    for (size_t i = 0; i < s->len; i++)
        bytes += strlen(s->v[i]->key) + 1;
    char *block = xmalloc(bytes ? bytes : 1);
    char *out = xcalloc(s->len ? s->len : 1, size);
    const char *key;
    void *value;
    for (size_t it = 0; opset_next(s, &it, &key, &value); n++) {
        size_t len = strlen(key) + 1;
        memcpy(block + o, key, len);
        fill(out + n * size, block + o, value);
        o += len;
    }
    *keys = block;
    return out;
}

struct sweep_arg {
    uint64_t now_ms;
    bool zero_is_never;
};

static bool is_expired(const char *key, const void *value, bool touched, void *arg)
{
    (void)key;
    (void)touched;
    const struct sweep_arg *a = arg;
    uint64_t expire_at_ms = *(const uint64_t *)value;
    return !(a->zero_is_never && expire_at_ms == 0) && expire_at_ms <= a->now_ms;
}

size_t opset_sweep_expired(struct opset *s, uint64_t now_ms, bool zero_is_never)
{
    struct sweep_arg a = {.now_ms = now_ms, .zero_is_never = zero_is_never};
    return opset_remove_if(s, is_expired, &a);
}

static bool is_untouched(const char *key, const void *value, bool touched, void *arg)
{
    (void)value;
    const char *keep = *(const char **)arg;
    return !touched && (keep == NULL || strcmp(key, keep) != 0);
}

size_t opset_remove_untouched(struct opset *s, const char *keep)
{
    return opset_remove_if(s, is_untouched, &keep);
}

bool opset_sync_keep(struct opset *s, const char *key, uint64_t stored_ms, uint64_t new_ms,
                     uint64_t slack_ms)
{
    uint64_t d = stored_ms > new_ms ? stored_ms - new_ms : new_ms - stored_ms;
    return d <= slack_ms && opset_touch(s, key);
}

int opset_check_room(const struct opset *s, const char *key, size_t used, size_t max,
                     size_t pending, const char *cmd, const char *full, struct err *err)
{
    if (opset_get(s, key) != NULL || (used < max && pending < max - used))
        return 0;
    return err_set(err, -ENOSPC, "%s: limit reached: %zu %s or raise the limit", cmd, max, full);
}

int opset_check_name(const char *cmd, const char *noun, const char *name, size_t max,
                     struct err *err)
{
    size_t len = strlen(name);
    if (len == 0)
        return err_set(err, -EINVAL, "%s: empty %s name", cmd, noun);
    if (len > max)
        return err_set(err, -EINVAL, "%s: %s name longer than %zu bytes", cmd, noun, max);
    return 0;
}

int opset_check_ttl(const char *cmd, int64_t ttl_min, uint64_t now_ms, struct err *err)
{
    if (ttl_min < 0)
        return err_set(err, -EINVAL, "%s: negative ttl %" PRId64, cmd, ttl_min);
    /* The backend adds the TTL to now() in MySQL; an expiry past what any
     * clock can show is a typo, not a wish. */
    if ((uint64_t)ttl_min > (UINT64_MAX - now_ms) / OPSET_MIN_MS)
        return err_set(err, -EINVAL, "%s: ttl %" PRId64 " minutes is too large", cmd, ttl_min);
    return 0;
}
