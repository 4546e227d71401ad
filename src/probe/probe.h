/* SPDX-License-Identifier: MIT */
/* One probe per (cluster, host): runs the cluster's MetricQuery on the host
 * through a reused non-blocking connection and keeps the last result. A probe
 * that is still running is never started again (no pile-up). Loop thread. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct loop;
struct probe;

enum probe_status {
    PROBE_NONE_YET = 0, /* never completed */
    PROBE_OK,
    PROBE_ERR_DIAL,  /* could not connect (IgnoreDialTcpErrors applies) */
    PROBE_ERR,       /* any other error: query error, bad result, timeout */
};

struct probe_result {
    enum probe_status status;
    double value;
    uint64_t at_ms;  /* wall clock of completion */
    char msg[256];   /* error text when status is an error */
};

struct probe_params {
    const char *host; /* IPv6 literal without brackets */
    uint16_t port;
    const char *user;
    const char *password;
    const char *query;     /* "" or NULL: replication lag */
    uint32_t timeout_ms;   /* connect and query; 1000 */
    uint32_t cache_ms;     /* CacheMillis; 0 = no cache */
};

/* Creates an idle probe; strings are copied. */
struct probe *probe_new(struct loop *loop, const struct probe_params *p);
/* Frees @p, closing its connection. NULL is fine. */
void probe_free(struct probe *p);
/* Starts a probe unless one is running or a cached value younger than
 * cache_ms exists. */
void probe_start(struct probe *p, uint64_t now_ms);
bool probe_is_busy(const struct probe *p);
/* The last completed result (status PROBE_NONE_YET before the first). */
const struct probe_result *probe_last(const struct probe *p);

/* Interprets a one-row result for @query (exposed for unit tests):
 * - "select ...": first column of the only row is the value;
 * - "show global ...": second column of the only row;
 * - "" / NULL (replication lag): the Seconds_Behind_Master column, looked up by
 *   name among @colnames (NULL value -> "replication not running").
 * Returns 0 and sets *value, or -EINVAL with @msg (size 256) set. */
int probe_parse_value(const char *query, size_t nrows, size_t ncols,
        const char *const *colnames, const char *const *cells, double *value, char *msg);
