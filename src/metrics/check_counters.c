/* SPDX-License-Identifier: MIT */
/* Three LRU tables of check counts. The app/store key is "<app>\n<store>":
 * a printable app name has no line feed, so the first one splits the key
 * whatever the store's name holds. Loop thread. */
#include "metrics/check_counters.h"

#include <stdlib.h>
#include <string.h>

#include "core/lru.h"
#include "core/text.h"
#include "core/xalloc.h"

struct check_counters {
    struct lru apps;
    struct lru stores;
    struct lru app_stores;
};

/* The store table is bounded by the caller (existing stores only); this cap
 * is a backstop. */
#define STORES_CAP 100000

struct check_counters *check_counters_new(size_t max_apps, size_t max_app_stores)
{
    struct check_counters *cc = xcalloc(1, sizeof(*cc));
    lru_init(&cc->apps, max_apps, sizeof(struct check_counts), NULL);
    lru_init(&cc->stores, STORES_CAP, sizeof(struct check_counts), NULL);
    lru_init(&cc->app_stores, max_app_stores, sizeof(struct check_counts), NULL);
    return cc;
}

void check_counters_free(struct check_counters *cc)
{
    if (cc == NULL)
        return;
    lru_deinit(&cc->apps);
    lru_deinit(&cc->stores);
    lru_deinit(&cc->app_stores);
    free(cc);
}

static void count(struct check_counts *c, int status)
{
    if (c == NULL)
        return;
    c->total++;
    if (status != 200)
        c->error++;
    if (status == 500)
        c->internal_error++;
}

void check_counters_add(struct check_counters *cc, const char *app, const char *store, int status)
{
    char name[CHECK_COUNTERS_APP_MAX + 1];
    size_t n = text_printable(name, sizeof(name), app);
    count(lru_touch(&cc->apps, name, NULL), status);
    count(lru_touch(&cc->stores, store, NULL), status);
    char *key = xmalloc(n + 1 + strlen(store) + 1);
    memcpy(key, name, n);
    key[n] = '\n';
    memcpy(key + n + 1, store, strlen(store) + 1);
    count(lru_touch(&cc->app_stores, key, NULL), status);
    free(key);
}

static void each(const struct lru *l, bool is_app, check_counters_fn *fn, void *arg)
{
    for (struct lru_node *n = lru_first(l); n != NULL; n = lru_next(n)) {
        const char *key = lru_node_key(n);
        fn(is_app ? key : NULL, is_app ? NULL : key, lru_node_value(n), arg);
    }
}

void check_counters_each_app(const struct check_counters *cc, check_counters_fn *fn, void *arg)
{
    each(&cc->apps, true, fn, arg);
}

void check_counters_each_store(const struct check_counters *cc, check_counters_fn *fn, void *arg)
{
    each(&cc->stores, false, fn, arg);
}

void check_counters_each_app_store(const struct check_counters *cc, check_counters_fn *fn,
                                   void *arg)
{
    char stack[CHECK_COUNTERS_APP_MAX + 1];
    for (struct lru_node *n = lru_first(&cc->app_stores); n != NULL; n = lru_next(n)) {
        const char *key = lru_node_key(n);
        const char *nl = strchr(key, '\n');
        size_t alen = (size_t)(nl - key);
        memcpy(stack, key, alen);
        stack[alen] = '\0';
        fn(stack, nl + 1, lru_node_value(n), arg);
    }
}

const struct check_counts *check_counters_store(const struct check_counters *cc, const char *store)
{
    return lru_get(&cc->stores, store);
}

void check_counters_get_stats(const struct check_counters *cc, struct check_counters_stats *out)
{
    out->apps = lru_len(&cc->apps);
    out->app_stores = lru_len(&cc->app_stores);
    out->stores = lru_len(&cc->stores);
    out->apps_evicted = cc->apps.evicted;
    out->app_stores_evicted = cc->app_stores.evicted;
}
