/* SPDX-License-Identifier: MIT */
/* Check counters by app, by store and by app and store (the original's
 * check.<app>.total, check.any.mysql.<store>.total and
 * check.<app>.mysql.<store>.total, with .error and .internal-error). App
 * names come from clients, so the app and app/store tables are capped and
 * forget their least recently counted entry to make room; the caller counts
 * only stores that exist, which bounds the store table. Loop thread. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Longest app name counted, in bytes; longer names are cut (on a UTF-8
 * character boundary) and counted under the cut name. */
#define CHECK_COUNTERS_APP_MAX 255

struct check_counts {
    uint64_t total;
    uint64_t error;          /* answered with a status other than 200 */
    uint64_t internal_error; /* answered 500 */
};

struct check_counters_stats {
    size_t apps;       /* entries in the app table */
    size_t app_stores; /* entries in the app/store table */
    size_t stores;
    uint64_t apps_evicted; /* entries forgotten to stay within the caps */
    uint64_t app_stores_evicted;
};

struct check_counters;

/* A table that counts at most @max_apps apps and @max_app_stores app/store
 * pairs (0: none). */
struct check_counters *check_counters_new(size_t max_apps, size_t max_app_stores);
void check_counters_free(struct check_counters *cc);

/* Counts one check by @app on @store answered with HTTP @status. @app is
 * stored printable (see text_printable()); @store is used as given. */
void check_counters_add(struct check_counters *cc, const char *app, const char *store, int status);

typedef void check_counters_fn(const char *app, const char *store, const struct check_counts *c,
                               void *arg);
/* Calls @fn for every entry, most recently counted first: per app (@store
 * NULL), per store (@app NULL), per app and store. */
void check_counters_each_app(const struct check_counters *cc, check_counters_fn *fn, void *arg);
void check_counters_each_store(const struct check_counters *cc, check_counters_fn *fn, void *arg);
void check_counters_each_app_store(const struct check_counters *cc, check_counters_fn *fn,
                                   void *arg);
/* Counts of the store named @store, or NULL if it was never counted. */
const struct check_counts *check_counters_store(const struct check_counters *cc, const char *store);
void check_counters_get_stats(const struct check_counters *cc, struct check_counters_stats *out);
