/* SPDX-License-Identifier: MIT */
/* Open-addressing string map. Owner thread only. The load factor stays under
 * 3/4 and keys are hashed with the process's secret SipHash key, so lookups
 * end at an empty slot quickly whatever names clients send. */
#include "core/strmap.h"

#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "core/xalloc.h"

size_t strmap_hash(const char *s)
{
    return (size_t)hash_str(s);
}

void strmap_init(struct strmap *m)
{
    m->slots = NULL;
    m->size = 0;
    m->len = 0;
}

void strmap_deinit(struct strmap *m)
{
    for (size_t i = 0; i < m->size; i++)
        free(m->slots[i].key);
    free(m->slots);
    strmap_init(m);
}

void strmap_deinit_values(struct strmap *m, void (*free_value)(void *value))
{
    for (size_t i = 0; i < m->size; i++)
        if (m->slots[i].key != NULL)
            free_value(m->slots[i].value);
    strmap_deinit(m);
}

static size_t find(const struct strmap *m, const char *key, size_t h)
{
    size_t mask = m->size - 1;
    size_t i = h & mask;
    while (m->slots[i].key != NULL) {
        if (m->slots[i].hash == h && strcmp(m->slots[i].key, key) == 0)
            return i;
        i = (i + 1) & mask;
    }
    return i;
}

static void grow(struct strmap *m)
{
    struct strmap_slot *old = m->slots;
    size_t old_size = m->size;
    m->size = old_size ? old_size * 2 : 16;
    m->slots = xcalloc(m->size, sizeof(*m->slots));
    for (size_t i = 0; i < old_size; i++) {
        if (old[i].key == NULL)
            continue;
        size_t j = find(m, old[i].key, old[i].hash);
        m->slots[j] = old[i];
    }
    free(old);
}

void *strmap_get(const struct strmap *m, const char *key)
{
    if (m->len == 0)
        return NULL;
    size_t i = find(m, key, strmap_hash(key));
    return m->slots[i].key ? m->slots[i].value : NULL;
}

void *strmap_put(struct strmap *m, const char *key, void *value)
{
    if ((m->len + 1) * 4 > m->size * 3)
        grow(m);
    size_t h = strmap_hash(key);
    size_t i = find(m, key, h);
    if (m->slots[i].key != NULL) {
        void *prev = m->slots[i].value;
        m->slots[i].value = value;
        return prev;
    }
    m->slots[i].key = xstrdup(key);
    m->slots[i].hash = h;
    m->slots[i].value = value;
    m->len++;
    return NULL;
}

void *strmap_del(struct strmap *m, const char *key)
{
    if (m->len == 0)
        return NULL;
    size_t mask = m->size - 1;
    size_t i = find(m, key, strmap_hash(key));
    if (m->slots[i].key == NULL)
        return NULL;
    void *value = m->slots[i].value;
    free(m->slots[i].key);
    m->slots[i].key = NULL;
    m->len--;
    /* Backward-shift the following run so lookups never stop early. */
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (m->slots[j].key == NULL)
            break;
        size_t home = m->slots[j].hash & mask;
        bool movable = (i <= j) ? (home <= i || home > j) : (home <= i && home > j);
        if (movable) {
            m->slots[i] = m->slots[j];
            m->slots[j].key = NULL;
            i = j;
        }
    }
    return value;
}

bool strmap_next(const struct strmap *m, size_t *iter, const char **key, void **value)
{
    while (*iter < m->size) {
        size_t i = (*iter)++;
        if (m->slots[i].key != NULL) {
            *key = m->slots[i].key;
            if (value != NULL)
                *value = m->slots[i].value;
            return true;
        }
    }
    return false;
}

size_t strmap_delete_if(struct strmap *m, bool (*doomed)(const char *key, void *value, void *arg),
                        void *arg, void (*free_value)(void *value))
{
    /* Deletion shifts later entries back, so collect first, then delete. */
    char **keys = NULL;
    size_t n = 0;
    for (size_t i = 0; i < m->size; i++) {
        struct strmap_slot *s = &m->slots[i];
        if (s->key == NULL || !doomed(s->key, s->value, arg))
            continue;
        if (keys == NULL)
            keys = xcalloc(m->len, sizeof(*keys));
        keys[n++] = xstrdup(s->key);
    }
    for (size_t i = 0; i < n; i++) {
        void *v = strmap_del(m, keys[i]);
        if (free_value != NULL)
            free_value(v);
        free(keys[i]);
    }
    free(keys);
    return n;
}
