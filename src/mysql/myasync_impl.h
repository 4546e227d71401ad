/* SPDX-License-Identifier: MIT */
/* Private to myasync, whose parts share struct myconn: myasync.c opens and
 * closes connections (public API, name lookup, dial, setup statements),
 * myasync_drive.c runs the connector's suspended operations from socket and
 * timer events, myasync_result.c runs queries and reads their results within
 * the limits. Loop thread. Only mysql/ includes it (and tests/stack/costack_depth.c,
 * for the stack bound). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <netinet/in.h>

#include <mysql.h>
#include <uv.h>

#include "loop/loop.h"
#include "mysql/myasync.h"

/* mysql.h defines it only on Windows; a POSIX my_socket is an int. */
#ifndef INVALID_SOCKET
#define INVALID_SOCKET (-1)
#endif

/* Default result caps (myconn_query()): a larger result is a misconfigured
 * query, not a metric, so reading stops and the connection is dropped rather
 * than buffering it all. Callers that expect more pass their own. */
#define MYCONN_MAX_ROWS         10000
#define MYCONN_MAX_RESULT_BYTES (16u << 20)
#define MYCONN_MAX_ADDRS        4
#define MYCONN_DEFAULT_TIMEOUT  1000
#define MYCONN_KILL_WINDOW_MS   10000
/* The connector's co-routine stack per connection (its default is 256 KB).
 * The deepest use measured over every statement shape the daemon sends,
 * including authentication through a dynamically loaded client plugin
 * (ed25519), is under 8 KB; tests/stack/costack_depth.c runs those shapes
 * on stacks with a guard page and fails past MYCONN_COSTACK_BOUND. At
 * 64 KB the stack comes from the heap instead of a mapping of its own and
 * only the pages it touches are resident. */
#define MYCONN_COSTACK_SIZE  ((size_t)64 * 1024)
#define MYCONN_COSTACK_BOUND (MYCONN_COSTACK_SIZE / 4)
/* The connector's read-ahead buffer per connection (PVIO_READ_AHEAD_CACHE_SIZE
 * in Connector/C), and glibc's default mmap threshold, restored after the
 * connect allocates that buffer (start_connect()). */
#define MYCONN_READ_AHEAD_BYTES    ((size_t)16 * 1024)
#define MYCONN_HEAP_MMAP_THRESHOLD ((size_t)128 * 1024)
/* Resuming an operation whose socket was shut down ends it at once; the
 * bound only guards against a connector that keeps asking to wait. */
#define MYCONN_UNWIND_STEPS 64
/* Buffers of a finished query up to this size are kept for the next one
 * (a probe's text, its rows), larger ones freed. */
#define MYCONN_KEEP_BYTES 4096
/* The state machine's steps: nothing is in flight any more (the callback
 * may have run and freed the connection). */
#define STEP_DONE (-1)

enum conn_op {
    OP_NONE = 0,
    OP_CONNECT,     /* mysql_real_connect_start/cont */
    OP_SETUP,       /* SET NAMES ... COLLATE after connecting */
    OP_KILL,        /* KILL QUERY of the query that timed out on the last connection */
    OP_QUERY,       /* mysql_send_query_start/cont */
    OP_RESULT_WAIT, /* query sent; waiting for the answer before reading */
    OP_RESULT,      /* mysql_read_query_result_start/cont */
    OP_FETCH,       /* mysql_fetch_row_start/cont on a mysql_use_result() result */
};

struct resolve_req {
    uv_getaddrinfo_t req;
    struct myconn *c; /* NULL once the connection gave up on this lookup */
};

/* The rows being read for the current query, owned until handed to the
 * callback. Cell bytes go into one growing buffer and each cell is recorded
 * as an offset into it (CELL_NULL for SQL NULL), so a result of 100,000 rows
 * costs a few reallocations, not one allocation per cell; the pointers the
 * callback sees are made once the result is complete. */
#define CELL_NULL SIZE_MAX
struct rowbuf {
    char **colnames;
    size_t ncols;
    size_t *offs; /* ncells offsets into data */
    size_t ncells;
    size_t offs_cap;
    char *data;
    size_t data_len;
    size_t data_cap;
    const char **cells; /* made by rows_cells() */
    size_t cells_cap;
    size_t nrows;
    uint64_t affected_rows;
};

/* Fields are grouped by size rather than by topic, to avoid padding. */
struct myconn {
    uv_loop_t *uv;
    struct loop *loop;
    char *host;
    char *user;
    char *password;
    char *database;
    char *charset;
    char *collation;

    MYSQL *mysql;     /* NULL when not connected */
    uv_poll_t *poll;  /* heap: freed in its close callback */
    MYSQL *ret_mysql; /* results of the operations */
    MYSQL_ROW ret_row;
    MYSQL_RES *res;                /* the mysql_use_result() being read */
    struct resolve_req *resolving; /* the name lookup in flight */
    size_t naddrs;
    size_t addr_idx;

    char *name; /* "host:port", IPv6 in brackets */
    char *sql;  /* the query in flight; kept for the next one, often the same */
    size_t sql_len;
    size_t sql_cap;
    size_t max_rows; /* caps of the query in flight */
    size_t max_bytes;
    myconn_done_fn *cb;
    void *arg;
    struct rowbuf rows;
    struct rowbuf spare; /* the last small result's buffers, emptied */

    struct loop_deferred kick;      /* defers the start so the callback is never synchronous */
    struct loop_gate *connect_gate; /* NULL, or where a connect waits for a place */
    bool in_gate;                   /* holds a place of connect_gate */
    uv_timer_t wait_timer;          /* MYSQL_WAIT_TIMEOUT */
    /* Connect or query as a whole: ends at deadline_at (uv_now() ms, 0 when
     * nothing runs). The timer stays armed between queries and is moved
     * only when it would fire too late, so a probe every 50 ms does not
     * start and stop a timer each time; firing early, it re-arms. */
    uv_timer_t deadline;
    uint64_t deadline_at;

    uint32_t connect_timeout_ms;
    uint32_t query_timeout_ms;
    uint32_t cur_timeout_ms; /* the query in flight's */
    enum conn_op op;         /* the suspended operation, if any */
    int wait;                /* MYSQL_WAIT_* the connector asked for */
    int poll_fd;
    int poll_events; /* UV_* the poll is started with, 0 when stopped */
    int ret_int;
    my_bool ret_bool;
    int handles_open; /* timers not yet closed, during myconn_free */
    unsigned int last_errno;
    int setup_step;               /* myconn_next_setup() progress on a new connection */
    unsigned long kill_thread_id; /* server thread of a query that timed out */
    uint64_t kill_until_ms;       /* uv_now() after which it is not killed any more */
    uint16_t port;
    bool connected;  /* handshake (and SET NAMES) done */
    bool busy;       /* from myconn_query() until the callback */
    bool idle_event; /* the socket became readable or failed while idle */
    bool freeing;    /* myconn_free() was called (from the callback, maybe) */

    char addrs[MYCONN_MAX_ADDRS][INET6_ADDRSTRLEN];
    char setup_sql[300]; /* the statement myconn_next_setup() is running */
};

/* ---- myasync_drive.c ---- */

/* Runs completed operations until one has to wait or the query is over.
 * @status is what the last _start/_cont returned. */
void myconn_drive(struct myconn *c, int status);
/* Stops the connector's timer; the socket stays watched (see arm()). */
void myconn_wait_stop(struct myconn *c);
/* Closes the connection. @graceful sends COM_QUIT on an idle healthy
 * connection; otherwise the socket is shut down first so that nothing
 * waits on the network. */
void myconn_drop(struct myconn *c, bool graceful);
/* True when an idle connection was closed or spoken to by the server. */
bool myconn_is_stale(struct myconn *c);

/* ---- myasync.c: the connect phase ---- */

/* Starts the connect or query deadline, @ms from now. */
void myconn_deadline_start(struct myconn *c, uint32_t ms);
/* Resolves (unless an IP literal), dials and prepares a connection, then runs
 * the query in flight. */
void myconn_connect_begin(struct myconn *c);
/* Completions of OP_CONNECT and of OP_SETUP / OP_KILL: each starts the next
 * operation and returns its status, or STEP_DONE. */
int myconn_connect_done(struct myconn *c);
int myconn_setup_done(struct myconn *c, enum conn_op op);

/* ---- myasync_result.c ---- */

/* Starts the query in flight on a connected connection. */
int myconn_start_query(struct myconn *c);
/* Completions of OP_QUERY (sent), OP_RESULT and OP_FETCH; as
 * myconn_connect_done(). */
int myconn_send_done(struct myconn *c);
int myconn_query_done(struct myconn *c);
int myconn_fetch_done(struct myconn *c);
/* Gives back the connect gate's place, if @c holds one. */
void myconn_gate_leave(struct myconn *c);
/* Ends the current query and calls back. The callback may free @c or start
 * the next query, so this is the last thing any caller does with @c. */
void myconn_finish(struct myconn *c, enum myconn_status status, const char *msg);
void myconn_finish_fmt(struct myconn *c, enum myconn_status status, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
void myconn_rows_free(struct rowbuf *r);
