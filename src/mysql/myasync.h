/* SPDX-License-Identifier: MIT */
/* Non-blocking MySQL/MariaDB client connections driven by the loop: MariaDB
 * Connector/C's non-blocking API behind uv_poll + uv_timer. One query at a
 * time per connection; the connection is opened on first use and reused.
 * Loop thread only. <mysql.h> is included nowhere else. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;
struct myconn;

struct myconn_params {
    const char *host; /* name or IP literal (IPv6 without brackets); resolved asynchronously */
    uint16_t port;
    const char *user;
    const char *password;
    const char *database;  /* may be NULL */
    const char *charset;   /* may be NULL: utf8mb4 */
    const char *collation; /* may be NULL: SET NAMES <charset> COLLATE <collation> after connect */
    uint32_t connect_timeout_ms; /* resolve + connect + handshake (+ SET NAMES); 0: 1000 */
    uint32_t query_timeout_ms;   /* whole query incl. reading the result; 0: 1000 */
    /* May be NULL. A connect waits here for a place (no deadline runs while
     * it waits) and holds it until the query that needed it ends. */
    struct loop_gate *connect_gate;
};

/* A result set, owned by myasync and valid only during the callback. cells
 * is row-major nrows*ncols; a SQL NULL is a NULL pointer. */
struct myresult {
    size_t nrows;
    size_t ncols;
    const char *const *colnames;
    const char *const *cells;
    uint64_t affected_rows;
};

enum myconn_status {
    MYCONN_OK = 0,
    MYCONN_ERR_CONNECT, /* resolve/dial/handshake failed or timed out: a "dial" error */
    MYCONN_ERR_QUERY,   /* the server answered with an error */
    MYCONN_ERR_TIMEOUT, /* the query did not finish in time; connection dropped */
    MYCONN_ERR_IO,      /* connection lost mid-query */
};

/* Called once per myconn_query(). @res is NULL unless status is MYCONN_OK
 * (and then NULL for statements without a result set is replaced by an empty
 * result). @errmsg is a one-line reason including the library's errno when
 * status != OK, and "" otherwise. A result over the query's limits (by
 * default 10000 rows or 16 MiB) is not read: MYCONN_ERR_QUERY ("result too
 * large"), connection dropped. The callback may start the next query or free
 * @c. */
typedef void myconn_done_fn(struct myconn *c, enum myconn_status status, const struct myresult *res,
                            const char *errmsg, void *arg);

/* Initializes / releases the client library's global state. Call init once
 * in main() before any thread starts, end once after every connection was
 * freed. Return 0 or -1. */
int myasync_library_init(void);
void myasync_library_end(void);

/* Creates an idle connection object; strings in @p are copied. */
struct myconn *myconn_new(struct loop *loop, const struct myconn_params *p);
/* Closes the connection (asynchronously if needed) and frees it. A query in
 * flight is abandoned and its callback is NOT called. NULL is fine. */
void myconn_free(struct myconn *c);
/* Starts @sql; @cb is called later from the loop, never from inside this
 * call. Returns 0, or -EBUSY if a query is already running. */
int myconn_query(struct myconn *c, const char *sql, myconn_done_fn *cb, void *arg);

/* Limits of one query; a zero field keeps the default. */
struct myquery_limits {
    size_t max_rows;     /* default 10000 */
    size_t max_bytes;    /* cell bytes, each cell counting its length + 1; default 16 MiB */
    uint32_t timeout_ms; /* the whole query; default the connection's query_timeout_ms */
};

/* myconn_query() with the limits in @lim (NULL: the defaults). A result
 * with more than max_rows rows or max_bytes bytes fails as too large; the
 * caller who wants "the first N rows" asks for N + 1 rows with LIMIT in the
 * statement and caps it here above that. */
int myconn_query_limited(struct myconn *c, const char *sql, const struct myquery_limits *lim,
                         myconn_done_fn *cb, void *arg);
bool myconn_is_busy(const struct myconn *c);
/* The MySQL error number (server ER_* or client CR_*) of the last failed
 * query or connect, or 0 when it succeeded or failed otherwise (timeout,
 * resolve error). Valid during and after the callback. */
unsigned int myconn_last_errno(const struct myconn *c);
/* "host:port" as configured (IPv6 in brackets), for messages. */
const char *myconn_name(const struct myconn *c);

/* Appends @s as a SQL hex literal (X'..', or '' for empty) to @buf of @size
 * bytes at *@len. Safe for any byte string and any connection charset.
 * Returns 0 or -ENOSPC. Any thread. */
int myasync_hex_literal(char *buf, size_t size, size_t *len, const char *s);
