/* SPDX-License-Identifier: MIT */
/* One probe per (cluster, host): runs the cluster's MetricQuery on the host
 * through a reused non-blocking connection and keeps the last result. A probe
 * that is still running is never started again (no pile-up). Loop thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;
struct probe;

enum probe_status {
    PROBE_NONE_YET = 0, /* never completed */
    PROBE_OK,
    PROBE_ERR_DIAL, /* could not connect (IgnoreDialTcpErrors applies) */
    PROBE_ERR,      /* any other error: query error, bad result, timeout */
};

struct probe_result {
    enum probe_status status;
    double value;
    uint64_t at_ms; /* wall clock of completion */
    char msg[256];  /* error text when status is an error */
};

struct probe_params {
    const char *host; /* IPv6 literal without brackets */
    uint16_t port;
    const char *user;
    const char *password;
    const char *query;              /* "" or NULL: replication lag */
    uint32_t timeout_ms;            /* connect and query; 1000 */
    uint32_t cache_ms;              /* CacheMillis; 0 = no cache */
    const char *collation;          /* Stores.MySQL.Collation; NULL or "": utf8mb4 */
    struct loop_gate *connect_gate; /* NULL: connects never wait (myconn_params) */
    const char *cluster;            /* for log lines only; may be NULL */
};

enum probe_query_kind {
    PROBE_QUERY_SELECT,      /* "select ...": one row, one numeric column */
    PROBE_QUERY_SHOW_GLOBAL, /* "show global ...": one row of (name, value) */
    PROBE_QUERY_REPLICATION, /* "" or NULL: SHOW SLAVE/REPLICA STATUS lag */
    PROBE_QUERY_UNSUPPORTED, /* anything else: never sent to the server */
};

/* Classifies a MetricQuery by its case-insensitive prefix after leading
 * whitespace. Pure. */
enum probe_query_kind probe_query_kind(const char *query);

/* Creates an idle probe; strings are copied. */
struct probe *probe_new(struct loop *loop, const struct probe_params *p);
/* Frees @p, closing its connection. NULL is fine. */
void probe_free(struct probe *p);
/* Starts a probe unless one is running or a cached value younger than
 * cache_ms exists. */
void probe_start(struct probe *p, uint64_t now_ms);
bool probe_is_busy(const struct probe *p);
/* Changes CacheMillis (a reload): the connection and the last result stay. */
void probe_set_cache_ms(struct probe *p, uint32_t cache_ms);
/* The last completed result (status PROBE_NONE_YET before the first). */
const struct probe_result *probe_last(const struct probe *p);

/* Interprets a result for @query (exposed for unit tests):
 * - "select ...": one row of one column, the value;
 * - "show global ...": one row of (name, value), the second column;
 * - "" / NULL (replication lag): the Seconds_Behind_Master (or, from SHOW
 *   REPLICA STATUS, Seconds_Behind_Source) column, looked up by name among
 *   @colnames; several rows are replication channels and the worst lag wins;
 *   no row means not a replica; a NULL lag means "replication not running".
 * Any other shape, a NULL or a non-numeric value is an error, and so is an
 * unsupported @query. Returns 0 and sets *value, or -EINVAL with @msg (size
 * 256) set to one line. Pure. */
int probe_parse_value(const char *query, size_t nrows, size_t ncols, const char *const *colnames,
                      const char *const *cells, double *value, char *msg);
