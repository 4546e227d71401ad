/* SPDX-License-Identifier: MIT */
/* MariaDB Connector/C's non-blocking API driven by libuv. Every blocking call
 * runs as a _start/_cont pair; while the connector waits, a uv_poll watches
 * its socket, a uv_timer serves its own timeouts, and a deadline timer bounds
 * the whole connect or query. Loop thread only. Invariant: the poll handle is
 * stopped before each _cont (which may close the socket) and closed before we
 * close the socket, so libuv never watches a descriptor that was reused. */
#include "mysql/myasync.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <errmsg.h>
#include <mysql.h>
#include <uv.h>

#include "core/xalloc.h"
#include "log/log.h"
#include "loop/loop.h"

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
/* Resuming an operation whose socket was shut down ends it at once; the
 * bound only guards against a connector that keeps asking to wait. */
#define MYCONN_UNWIND_STEPS 64
/* drive() and step(): nothing is in flight any more (the callback may have
 * run and freed the connection). */
#define STEP_DONE (-1)

enum conn_op {
    OP_NONE = 0,
    OP_CONNECT, /* mysql_real_connect_start/cont */
    OP_SETUP,   /* SET NAMES ... COLLATE after connecting */
    OP_KILL,    /* KILL QUERY of the query that timed out on the last connection */
    OP_QUERY,   /* mysql_real_query_start/cont */
    OP_FETCH,   /* mysql_fetch_row_start/cont on a mysql_use_result() result */
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
    size_t nrows;
    uint64_t affected_rows;
};

/* Fields are grouped by size rather than by topic, to avoid padding. */
struct myconn {
    uv_loop_t *uv;
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

    char *sql; /* the query in flight */
    size_t sql_len;
    size_t max_rows; /* caps of the query in flight */
    size_t max_bytes;
    myconn_done_fn *cb;
    void *arg;
    struct rowbuf rows;

    uv_timer_t kick;       /* defers the start so the callback is never synchronous */
    uv_timer_t wait_timer; /* MYSQL_WAIT_TIMEOUT */
    uv_timer_t deadline;   /* connect or query as a whole */

    uint32_t connect_timeout_ms;
    uint32_t query_timeout_ms;
    uint32_t cur_timeout_ms; /* the query in flight's */
    enum conn_op op;         /* the suspended operation, if any */
    int wait;                /* MYSQL_WAIT_* the connector asked for */
    int poll_fd;
    int ret_int;
    int handles_open; /* timers not yet closed, during myconn_free */
    unsigned int last_errno;
    int setup_step;               /* next_setup() progress on a new connection */
    unsigned long kill_thread_id; /* server thread of a query that timed out */
    uint64_t kill_until_ms;       /* uv_now() after which it is not killed any more */
    uint16_t port;
    bool connected; /* handshake (and SET NAMES) done */
    bool busy;      /* from myconn_query() until the callback */

    char addrs[MYCONN_MAX_ADDRS][INET6_ADDRSTRLEN];
    char name[300];      /* "host:port", IPv6 in brackets */
    char setup_sql[300]; /* the statement next_setup() is running */
};

static int step(struct myconn *c);

/* ---- results ---- */

static void rows_free(struct rowbuf *r)
{
    for (size_t i = 0; i < r->ncols; i++)
        free(r->colnames[i]);
    free(r->colnames);
    free(r->offs);
    free(r->data);
    free(r->cells);
    memset(r, 0, sizeof(*r));
}

/* Appends one row; returns false (with @why set) when the result would grow
 * past @max_rows rows or @max_bytes bytes of cells (each cell counts its
 * length plus one). */
static bool rows_add(struct rowbuf *r, MYSQL_ROW row, const unsigned long *lengths, size_t max_rows,
                     size_t max_bytes, char *why, size_t why_size)
{
    if (r->nrows >= max_rows) {
        snprintf(why, why_size, "more than %zu rows", max_rows);
        return false;
    }
    size_t row_bytes = 0;
    for (size_t i = 0; i < r->ncols; i++)
        if (row[i] != NULL)
            row_bytes += (size_t)lengths[i] + 1;
    if (row_bytes > max_bytes || r->data_len > max_bytes - row_bytes) {
        snprintf(why, why_size, "more than %zu bytes", max_bytes);
        return false;
    }
    if (r->ncells + r->ncols > r->offs_cap) {
        size_t cap = r->offs_cap ? r->offs_cap * 2 : 16;
        while (cap < r->ncells + r->ncols)
            cap *= 2;
        r->offs = xrealloc(r->offs, cap * sizeof(*r->offs));
        r->offs_cap = cap;
    }
    if (r->data_len + row_bytes > r->data_cap) {
        size_t cap = r->data_cap ? r->data_cap * 2 : 256;
        while (cap < r->data_len + row_bytes)
            cap *= 2;
        r->data = xrealloc(r->data, cap);
        r->data_cap = cap;
    }
    for (size_t i = 0; i < r->ncols; i++) {
        if (row[i] == NULL) {
            r->offs[r->ncells++] = CELL_NULL;
            continue;
        }
        memcpy(r->data + r->data_len, row[i], lengths[i]);
        r->data[r->data_len + lengths[i]] = '\0';
        r->offs[r->ncells++] = r->data_len;
        r->data_len += (size_t)lengths[i] + 1;
    }
    r->nrows++;
    return true;
}

/* Turns the offsets into the pointers the callback sees, once the data
 * buffer no longer moves. */
static void rows_cells(struct rowbuf *r)
{
    r->cells = xcalloc(r->ncells ? r->ncells : 1, sizeof(*r->cells));
    for (size_t i = 0; i < r->ncells; i++)
        r->cells[i] = r->offs[i] == CELL_NULL ? NULL : r->data + r->offs[i];
}

/* ---- socket watching ---- */

static void on_poll_closed(uv_handle_t *h)
{
    free(h);
}

static void poll_release(struct myconn *c)
{
    if (c->poll == NULL)
        return;
    uv_close((uv_handle_t *)c->poll, on_poll_closed);
    c->poll = NULL;
    c->poll_fd = -1;
}

/* Stops watching before the connector runs again: it may close its socket
 * and a later socket may get the same number. */
static void wait_stop(struct myconn *c)
{
    if (c->poll != NULL)
        uv_poll_stop(c->poll);
    uv_timer_stop(&c->wait_timer);
    c->wait = 0;
}

static int op_cont(struct myconn *c, int events)
{
    switch (c->op) {
    case OP_CONNECT:
        return mysql_real_connect_cont(&c->ret_mysql, c->mysql, events);
    case OP_SETUP:
    case OP_KILL:
    case OP_QUERY:
        return mysql_real_query_cont(&c->ret_int, c->mysql, events);
    case OP_FETCH:
        return mysql_fetch_row_cont(&c->ret_row, c->res, events);
    case OP_NONE:
        break;
    }
    return 0;
}

/* Closes the connection. @graceful sends COM_QUIT on an idle healthy
 * connection, which cannot block: its send buffer is empty. Otherwise the
 * socket is shut down first, so that resuming a suspended operation, the
 * connector's result cleanup and COM_QUIT all fail at once instead of
 * waiting on the network. */
static void conn_drop(struct myconn *c, bool graceful)
{
    wait_stop(c);
    poll_release(c);
    if (c->mysql == NULL)
        return;
    bool idle = c->op == OP_NONE && c->res == NULL;
    if (!graceful || !idle) {
        my_socket fd = mysql_get_socket(c->mysql);
        if (fd != INVALID_SOCKET)
            shutdown(fd, SHUT_RDWR);
    }
    /* An operation abandoned mid-way would leak what it allocated on the
     * connector's co-routine stack; resuming it lets it fail and clean up. */
    for (int i = 0; c->op != OP_NONE && i < MYCONN_UNWIND_STEPS; i++) {
        if (op_cont(c, MYSQL_WAIT_TIMEOUT) == 0)
            c->op = OP_NONE;
    }
    if (c->op != OP_NONE)
        log_warn("mysql %s: operation did not end after the socket was shut down", c->name);
    c->op = OP_NONE;
    if (c->res != NULL) {
        mysql_free_result(c->res);
        c->res = NULL;
    }
    mysql_close(c->mysql);
    c->mysql = NULL;
    c->connected = false;
}

/* True when an idle connection was closed or spoken to by the server (a
 * wait_timeout or KILL error packet): sending on it would fail. */
static bool conn_is_stale(struct myconn *c)
{
    my_socket fd = mysql_get_socket(c->mysql);
    if (fd == INVALID_SOCKET)
        return true;
    char b;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return false;
    return true;
}

/* ---- completion ---- */

/* Ends the current query and calls back. The callback may free @c or start
 * the next query, so this is the last thing any caller does with @c. */
static void finish(struct myconn *c, enum myconn_status status, const char *msg)
{
    uv_timer_stop(&c->deadline);
    wait_stop(c);
    struct rowbuf rows = c->rows;
    memset(&c->rows, 0, sizeof(c->rows));
    if (status != MYCONN_OK)
        rows_free(&rows);
    else
        rows_cells(&rows);
    char errmsg[512];
    snprintf(errmsg, sizeof(errmsg), "%s", msg != NULL ? msg : "");
    myconn_done_fn *cb = c->cb;
    void *arg = c->arg;
    c->cb = NULL;
    c->arg = NULL;
    c->busy = false;
    free(c->sql);
    c->sql = NULL;
    struct myresult res = {
            .nrows = rows.nrows,
            .ncols = rows.ncols,
            .colnames = (const char *const *)rows.colnames,
            .cells = rows.cells,
            .affected_rows = rows.affected_rows,
    };
    if (cb != NULL)
        cb(c, status, status == MYCONN_OK ? &res : NULL, errmsg, arg);
    rows_free(&rows);
}

static void finish_fmt(struct myconn *c, enum myconn_status status, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void finish_fmt(struct myconn *c, enum myconn_status status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    finish(c, status, msg);
}

/* The address being dialled, for messages: "127.0.0.1:3306", or
 * "db-7:3306 (10.0.0.7)" when a name was resolved. */
static void dial_name(const struct myconn *c, char *buf, size_t size)
{
    const char *ip = c->naddrs > 0 ? c->addrs[c->addr_idx] : c->host;
    if (strcmp(ip, c->host) == 0)
        snprintf(buf, size, "%s", c->name);
    else
        snprintf(buf, size, "%s (%s)", c->name, ip);
}

static bool is_client_error(unsigned int code)
{
    return code >= CR_MIN_ERROR && code <= CR_MAX_ERROR;
}

/* Fails the connect phase with the connector's error. */
static int fail_connect(struct myconn *c, const char *what)
{
    char dial[400];
    dial_name(c, dial, sizeof(dial));
    char msg[512];
    c->last_errno = mysql_errno(c->mysql);
    snprintf(msg, sizeof(msg), "connect %s: %s%s%s [mysql %u]", dial, what ? what : "",
             what ? ": " : "", mysql_error(c->mysql), c->last_errno);
    conn_drop(c, false);
    finish(c, MYCONN_ERR_CONNECT, msg);
    return STEP_DONE;
}

/* Fails the query with the connector's error. A server error leaves the
 * connection usable; a client-side error (lost connection, out of sync)
 * drops it so that the next query reconnects. */
static int fail_query(struct myconn *c)
{
    unsigned int code = mysql_errno(c->mysql);
    c->last_errno = code;
    char msg[512];
    snprintf(msg, sizeof(msg), "query %s: %s [mysql %u]", c->name, mysql_error(c->mysql), code);
    enum myconn_status st = MYCONN_ERR_QUERY;
    if (code == 0 || is_client_error(code)) {
        st = MYCONN_ERR_IO;
        conn_drop(c, false);
    }
    finish(c, st, msg);
    return STEP_DONE;
}

/* ---- the state machine ---- */

static void on_poll(uv_poll_t *h, int status, int events);
static void on_wait_timeout(uv_timer_t *t);

/* Arms the poll and timer for the waits in @status. Returns 0 or a libuv
 * error. */
static int arm(struct myconn *c, int status)
{
    c->wait = status;
    int uvev = 0;
    if (status & MYSQL_WAIT_READ)
        uvev |= UV_READABLE;
    if (status & MYSQL_WAIT_WRITE)
        uvev |= UV_WRITABLE;
    if (status & MYSQL_WAIT_EXCEPT)
        uvev |= UV_PRIORITIZED;
    if (uvev != 0) {
        my_socket fd = mysql_get_socket(c->mysql);
        if (fd == INVALID_SOCKET)
            return UV_EBADF;
        if (c->poll != NULL && c->poll_fd != fd)
            poll_release(c);
        if (c->poll == NULL) {
            uv_poll_t *p = xmalloc(sizeof(*p));
            int rc = uv_poll_init_socket(c->uv, p, fd);
            if (rc < 0) {
                free(p);
                return rc;
            }
            p->data = c;
            c->poll = p;
            c->poll_fd = fd;
        }
        int rc = uv_poll_start(c->poll, uvev, on_poll);
        if (rc < 0)
            return rc;
    }
    if (status & MYSQL_WAIT_TIMEOUT)
        uv_timer_start(&c->wait_timer, on_wait_timeout, mysql_get_timeout_value_ms(c->mysql), 0);
    return 0;
}

/* Runs completed operations until one has to wait or the query is over.
 * @status is what the last _start/_cont returned. */
static void drive(struct myconn *c, int status)
{
    for (;;) {
        if (status > 0) {
            int rc = arm(c, status);
            if (rc == 0)
                return;
            bool connecting = !c->connected;
            conn_drop(c, false);
            finish_fmt(c, connecting ? MYCONN_ERR_CONNECT : MYCONN_ERR_IO,
                       "%s %s: cannot watch the socket: %s", connecting ? "connect" : "query",
                       c->name, uv_strerror(rc));
            return;
        }
        status = step(c);
        if (status == STEP_DONE)
            return;
    }
}

static void resume(struct myconn *c, int events)
{
    wait_stop(c);
    drive(c, op_cont(c, events));
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct myconn *c = h->data;
    int io = c->wait & (MYSQL_WAIT_READ | MYSQL_WAIT_WRITE | MYSQL_WAIT_EXCEPT);
    int ready = 0;
    if (status < 0) {
        /* Let the connector's own read or write report the socket error. */
        ready = io;
    } else {
        if (events & UV_READABLE)
            ready |= MYSQL_WAIT_READ;
        if (events & UV_WRITABLE)
            ready |= MYSQL_WAIT_WRITE;
        if (events & UV_PRIORITIZED)
            ready |= MYSQL_WAIT_EXCEPT;
        if (events & UV_DISCONNECT)
            ready |= io & (MYSQL_WAIT_READ | MYSQL_WAIT_WRITE);
    }
    if (ready == 0)
        ready = io;
    resume(c, ready);
}

static void on_wait_timeout(uv_timer_t *t)
{
    resume(t->data, MYSQL_WAIT_TIMEOUT);
}

static void on_deadline(uv_timer_t *t);

static void deadline_start(struct myconn *c, uint32_t ms)
{
    uv_timer_start(&c->deadline, on_deadline, ms, 0);
}

static int start_query(struct myconn *c)
{
    deadline_start(c, c->cur_timeout_ms);
    c->op = OP_QUERY;
    return mysql_real_query_start(&c->ret_int, c->mysql, c->sql, (unsigned long)c->sql_len);
}

static bool is_identifier(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++) {
        char ch = *s;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_'))
            return false;
    }
    return true;
}

static int start_connect(struct myconn *c)
{
    c->mysql = mysql_init(NULL);
    if (c->mysql == NULL) {
        log_error("mysql %s: mysql_init: out of memory", c->name);
        abort();
    }
    /* The default co-routine stack (60 KB) is enough for plain TCP. On
     * x86-64 the connector switches to it with its own assembly, which the
     * sanitizers never see; only uninstrumented library code and libc
     * interceptors run there, so ASan (even with
     * detect_stack_use_after_return=1), LSan and TSan stay quiet. Should a
     * report ever point into that stack, ASAN_OPTIONS=
     * detect_stack_use_after_return=0 is the documented remedy, not a
     * suppression. */
    if (mysql_options(c->mysql, MYSQL_OPT_NONBLOCK, NULL) != 0) {
        log_error("mysql %s: cannot enable the non-blocking API: out of memory", c->name);
        abort();
    }
    /* Always TCP: the connector turns "localhost" into the unix socket, but
     * we pass numeric addresses anyway, like the Go driver. */
    /* Probe answers are a few dozen bytes; the connector grows the buffer for
     * larger packets, so a small start saves ~6 KB per connection (3 MB at
     * 500 hosts). */
    unsigned long net_buffer = 2048;
    mysql_options(c->mysql, MYSQL_OPT_NET_BUFFER_LENGTH, &net_buffer);
    unsigned int proto = MYSQL_PROTOCOL_TCP;
    mysql_options(c->mysql, MYSQL_OPT_PROTOCOL, &proto);
    /* A server must not be able to read our files with LOAD DATA LOCAL. */
    unsigned int local_infile = 0;
    mysql_options(c->mysql, MYSQL_OPT_LOCAL_INFILE, &local_infile);
    mysql_options(c->mysql, MYSQL_SET_CHARSET_NAME, c->charset);
    /* A backstop only: the deadline timer ends the connect first. */
    unsigned int connect_sec = c->connect_timeout_ms / 1000 + 2;
    mysql_options(c->mysql, MYSQL_OPT_CONNECT_TIMEOUT, &connect_sec);
    c->connected = false;
    c->op = OP_CONNECT;
    return mysql_real_connect_start(&c->ret_mysql, c->mysql, c->addrs[c->addr_idx], c->user,
                                    c->password, c->database, c->port, NULL, 0);
}

static int next_setup(struct myconn *c);

static int connect_done(struct myconn *c)
{
    if (c->ret_mysql == NULL) {
        unsigned int code = mysql_errno(c->mysql);
        bool unreachable = code == CR_CONNECTION_ERROR || code == CR_CONN_HOST_ERROR;
        if (unreachable && c->addr_idx + 1 < c->naddrs) {
            log_debug("mysql %s: %s: %s [mysql %u], trying the next address", c->name,
                      c->addrs[c->addr_idx], mysql_error(c->mysql), code);
            conn_drop(c, false);
            c->addr_idx++;
            return start_connect(c);
        }
        return fail_connect(c, NULL);
    }
    c->setup_step = 0;
    return next_setup(c);
}

/* Runs the statements that prepare a new connection, then the query. The
 * connector may still read the statement after a suspension, so it lives in
 * @c, not on the stack. */
static int next_setup(struct myconn *c)
{
    if (c->setup_step < 1 && c->collation != NULL) {
        c->setup_step = 1;
        snprintf(c->setup_sql, sizeof(c->setup_sql), "SET NAMES %s COLLATE %s", c->charset,
                 c->collation);
        c->op = OP_SETUP;
        return mysql_real_query_start(&c->ret_int, c->mysql, c->setup_sql,
                                      (unsigned long)strlen(c->setup_sql));
    }
    /* Thread ids only grow on one server instance: a smaller new id, or a
     * long gap, means the server may have restarted and the old id may now
     * belong to someone else, so the kill is skipped. */
    if (c->kill_thread_id != 0 &&
        (mysql_thread_id(c->mysql) <= c->kill_thread_id || uv_now(c->uv) > c->kill_until_ms))
        c->kill_thread_id = 0;
    if (c->setup_step < 2 && c->kill_thread_id != 0) {
        c->setup_step = 2;
        snprintf(c->setup_sql, sizeof(c->setup_sql), "KILL QUERY %lu", c->kill_thread_id);
        c->op = OP_KILL;
        return mysql_real_query_start(&c->ret_int, c->mysql, c->setup_sql,
                                      (unsigned long)strlen(c->setup_sql));
    }
    c->connected = true;
    return start_query(c);
}

static int setup_done(struct myconn *c, enum conn_op op)
{
    if (op == OP_SETUP && c->ret_int != 0)
        return fail_connect(c, "SET NAMES");
    if (op == OP_KILL) {
        /* Usually "unknown thread" because the query ended meanwhile. */
        if (c->ret_int != 0)
            log_debug("mysql %s: %s: %s [mysql %u]", c->name, c->setup_sql, mysql_error(c->mysql),
                      mysql_errno(c->mysql));
        c->kill_thread_id = 0;
    }
    return next_setup(c);
}

static int query_done(struct myconn *c)
{
    if (c->ret_int != 0)
        return fail_query(c);
    unsigned int nfields = mysql_field_count(c->mysql);
    if (nfields == 0) {
        c->rows.affected_rows = mysql_affected_rows(c->mysql);
        if (mysql_more_results(c->mysql))
            conn_drop(c, false);
        finish(c, MYCONN_OK, NULL);
        return STEP_DONE;
    }
    c->res = mysql_use_result(c->mysql);
    if (c->res == NULL)
        return fail_query(c);
    const MYSQL_FIELD *fields = mysql_fetch_fields(c->res);
    c->rows.ncols = nfields;
    c->rows.colnames = xcalloc(nfields, sizeof(*c->rows.colnames));
    for (unsigned int i = 0; i < nfields; i++)
        c->rows.colnames[i] = xstrdup(fields[i].name);
    c->op = OP_FETCH;
    return mysql_fetch_row_start(&c->ret_row, c->res);
}

static int fetch_done(struct myconn *c)
{
    if (c->ret_row != NULL) {
        char why[64];
        if (!rows_add(&c->rows, c->ret_row, mysql_fetch_lengths(c->res), c->max_rows, c->max_bytes,
                      why, sizeof(why))) {
            conn_drop(c, false);
            finish_fmt(c, MYCONN_ERR_QUERY, "query %s: result too large: %s", c->name, why);
            return STEP_DONE;
        }
        c->op = OP_FETCH;
        return mysql_fetch_row_start(&c->ret_row, c->res);
    }
    /* The result is over, by its end or by an error (which detaches it from
     * the connection): freeing it does no I/O now. */
    mysql_free_result(c->res);
    c->res = NULL;
    if (mysql_errno(c->mysql) != 0)
        return fail_query(c);
    /* A CALL leaves more results behind; dropping the connection is simpler
     * than reading them, and CALL is not what probes run. */
    if (mysql_more_results(c->mysql))
        conn_drop(c, false);
    finish(c, MYCONN_OK, NULL);
    return STEP_DONE;
}

/* Handles the completion of c->op and starts the next operation. Returns its
 * status, or STEP_DONE. */
static int step(struct myconn *c)
{
    enum conn_op op = c->op;
    c->op = OP_NONE;
    switch (op) {
    case OP_CONNECT:
        return connect_done(c);
    case OP_SETUP:
    case OP_KILL:
        return setup_done(c, op);
    case OP_QUERY:
        return query_done(c);
    case OP_FETCH:
        return fetch_done(c);
    case OP_NONE:
        break;
    }
    return STEP_DONE;
}

static void on_deadline(uv_timer_t *t)
{
    struct myconn *c = t->data;
    if (!c->busy)
        return;
    bool connecting = !c->connected;
    uint32_t ms = connecting ? c->connect_timeout_ms : c->cur_timeout_ms;
    char dial[400];
    dial_name(c, dial, sizeof(dial));
    if (c->resolving != NULL) {
        c->resolving->c = NULL;
        uv_cancel((uv_req_t *)&c->resolving->req);
        c->resolving = NULL;
        finish_fmt(c, MYCONN_ERR_CONNECT, "connect %s: resolving the host timed out after %u ms",
                   c->name, ms);
        return;
    }
    /* The server goes on running a query whose client is gone; the next
     * connection kills it, so that a stuck server does not collect one
     * stuck query per timeout. */
    if (!connecting && c->mysql != NULL) {
        c->kill_thread_id = mysql_thread_id(c->mysql);
        c->kill_until_ms = uv_now(c->uv) + MYCONN_KILL_WINDOW_MS;
    }
    conn_drop(c, false);
    if (connecting)
        finish_fmt(c, MYCONN_ERR_CONNECT, "connect %s: timed out after %u ms", dial, ms);
    else
        finish_fmt(c, MYCONN_ERR_TIMEOUT, "query %s: timed out after %u ms", c->name, ms);
}

static void on_resolved(uv_getaddrinfo_t *r, int status, struct addrinfo *ai)
{
    struct resolve_req *req = (struct resolve_req *)r;
    struct myconn *c = req->c;
    free(req);
    if (c == NULL) {
        uv_freeaddrinfo(ai);
        return;
    }
    c->resolving = NULL;
    if (status < 0) {
        uv_freeaddrinfo(ai);
        finish_fmt(c, MYCONN_ERR_CONNECT, "connect %s: resolve %s: %s", c->name, c->host,
                   uv_strerror(status));
        return;
    }
    /* IPv4 first: MySQL servers often listen on 0.0.0.0 or 127.0.0.1 only,
     * and "localhost" must mean 127.0.0.1 as it does for the Go driver. The
     * other addresses are tried if connecting to one is refused. */
    c->naddrs = 0;
    for (int pass = 0; pass < 2; pass++) {
        int family = pass == 0 ? AF_INET : AF_INET6;
        for (const struct addrinfo *a = ai; a != NULL && c->naddrs < MYCONN_MAX_ADDRS;
             a = a->ai_next) {
            if (a->ai_family != family)
                continue;
            const void *src =
                    family == AF_INET
                            ? (const void *)&((const struct sockaddr_in *)a->ai_addr)->sin_addr
                            : (const void *)&((const struct sockaddr_in6 *)a->ai_addr)->sin6_addr;
            char ip[INET6_ADDRSTRLEN];
            if (uv_inet_ntop(family, src, ip, sizeof(ip)) != 0)
                continue;
            bool dup = false;
            for (size_t i = 0; i < c->naddrs; i++)
                dup = dup || strcmp(c->addrs[i], ip) == 0;
            if (!dup)
                memcpy(c->addrs[c->naddrs++], ip, sizeof(ip));
        }
    }
    uv_freeaddrinfo(ai);
    if (c->naddrs == 0) {
        finish_fmt(c, MYCONN_ERR_CONNECT, "connect %s: resolve %s: no IPv4 or IPv6 address",
                   c->name, c->host);
        return;
    }
    c->addr_idx = 0;
    drive(c, start_connect(c));
}

static bool is_ip_literal(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return uv_inet_pton(AF_INET, host, buf) == 0 || uv_inet_pton(AF_INET6, host, buf) == 0;
}

/* Connects, resolving the name on the thread pool unless it is an IP. */
static void connect_begin(struct myconn *c)
{
    deadline_start(c, c->connect_timeout_ms);
    if (c->collation != NULL && (!is_identifier(c->collation) || !is_identifier(c->charset))) {
        finish_fmt(c, MYCONN_ERR_CONNECT, "connect %s: invalid charset or collation name \"%s\"",
                   c->name, c->collation);
        return;
    }
    c->naddrs = 0;
    c->addr_idx = 0;
    if (is_ip_literal(c->host)) {
        snprintf(c->addrs[0], sizeof(c->addrs[0]), "%s", c->host);
        c->naddrs = 1;
        drive(c, start_connect(c));
        return;
    }
    struct resolve_req *req = xcalloc(1, sizeof(*req));
    req->c = c;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int rc = uv_getaddrinfo(c->uv, &req->req, on_resolved, c->host, NULL, &hints);
    if (rc < 0) {
        free(req);
        finish_fmt(c, MYCONN_ERR_CONNECT, "connect %s: resolve %s: %s", c->name, c->host,
                   uv_strerror(rc));
        return;
    }
    c->resolving = req;
}

static void on_kick(uv_timer_t *t)
{
    struct myconn *c = t->data;
    if (!c->busy)
        return;
    if (c->mysql != NULL && conn_is_stale(c)) {
        log_debug("mysql %s: idle connection was closed by the server, reconnecting", c->name);
        conn_drop(c, false);
    }
    if (c->mysql == NULL) {
        connect_begin(c);
        return;
    }
    drive(c, start_query(c));
}

/* ---- public ---- */

int myasync_library_init(void)
{
    return mysql_library_init(0, NULL, NULL) == 0 ? 0 : -1;
}

void myasync_library_end(void)
{
    mysql_library_end();
}

struct myconn *myconn_new(struct loop *loop, const struct myconn_params *p)
{
    struct myconn *c = xcalloc(1, sizeof(*c));
    c->uv = loop_uv(loop);
    c->host = xstrdup(p->host);
    c->port = p->port;
    c->user = xstrdup(p->user ? p->user : "");
    c->password = xstrdup(p->password ? p->password : "");
    c->database = p->database && *p->database ? xstrdup(p->database) : NULL;
    c->collation = p->collation && *p->collation ? xstrdup(p->collation) : NULL;
    if (p->charset != NULL && *p->charset != '\0') {
        c->charset = xstrdup(p->charset);
    } else if (c->collation != NULL) {
        /* A collation names its character set: utf8mb4_unicode_ci. */
        c->charset = xstrndup(c->collation, strcspn(c->collation, "_"));
    } else {
        c->charset = xstrdup("utf8mb4");
    }
    c->connect_timeout_ms = p->connect_timeout_ms ? p->connect_timeout_ms : MYCONN_DEFAULT_TIMEOUT;
    c->query_timeout_ms = p->query_timeout_ms ? p->query_timeout_ms : MYCONN_DEFAULT_TIMEOUT;
    if (strchr(c->host, ':') != NULL)
        snprintf(c->name, sizeof(c->name), "[%s]:%u", c->host, (unsigned)c->port);
    else
        snprintf(c->name, sizeof(c->name), "%s:%u", c->host, (unsigned)c->port);
    c->poll_fd = -1;
    uv_timer_init(c->uv, &c->kick);
    uv_timer_init(c->uv, &c->wait_timer);
    uv_timer_init(c->uv, &c->deadline);
    c->kick.data = c->wait_timer.data = c->deadline.data = c;
    return c;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct myconn *c = h->data;
    if (--c->handles_open == 0)
        free(c);
}

void myconn_free(struct myconn *c)
{
    if (c == NULL)
        return;
    c->cb = NULL;
    if (c->resolving != NULL) {
        c->resolving->c = NULL;
        uv_cancel((uv_req_t *)&c->resolving->req);
        c->resolving = NULL;
    }
    conn_drop(c, !c->busy);
    rows_free(&c->rows);
    free(c->sql);
    free(c->host);
    free(c->user);
    if (c->password != NULL)
        memset(c->password, 0, strlen(c->password));
    free(c->password);
    free(c->database);
    free(c->charset);
    free(c->collation);
    c->handles_open = 3;
    uv_close((uv_handle_t *)&c->kick, on_timer_closed);
    uv_close((uv_handle_t *)&c->wait_timer, on_timer_closed);
    uv_close((uv_handle_t *)&c->deadline, on_timer_closed);
}

int myconn_query(struct myconn *c, const char *sql, myconn_done_fn *cb, void *arg)
{
    return myconn_query_limited(c, sql, NULL, cb, arg);
}

int myconn_query_limited(struct myconn *c, const char *sql, const struct myquery_limits *lim,
                         myconn_done_fn *cb, void *arg)
{
    if (c->busy)
        return -EBUSY;
    c->max_rows = lim != NULL && lim->max_rows ? lim->max_rows : MYCONN_MAX_ROWS;
    c->max_bytes = lim != NULL && lim->max_bytes ? lim->max_bytes : MYCONN_MAX_RESULT_BYTES;
    c->cur_timeout_ms = lim != NULL && lim->timeout_ms ? lim->timeout_ms : c->query_timeout_ms;
    c->busy = true;
    c->last_errno = 0;
    c->sql = xstrdup(sql);
    c->sql_len = strlen(sql);
    c->cb = cb;
    c->arg = arg;
    uv_timer_start(&c->kick, on_kick, 0, 0);
    return 0;
}

bool myconn_is_busy(const struct myconn *c)
{
    return c->busy;
}

unsigned int myconn_last_errno(const struct myconn *c)
{
    return c->last_errno;
}

const char *myconn_name(const struct myconn *c)
{
    return c->name;
}

int myasync_hex_literal(char *buf, size_t size, size_t *len, const char *s)
{
    static const char digits[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    size_t need = n == 0 ? 2 : 3 + 2 * n; /* '' or X'..' */
    if (*len >= size || size - *len < need + 1)
        return -ENOSPC;
    char *out = buf + *len;
    if (n == 0) {
        *out++ = '\'';
        *out++ = '\'';
    } else {
        *out++ = 'X';
        *out++ = '\'';
        for (size_t i = 0; i < n; i++) {
            unsigned char ch = (unsigned char)s[i];
            *out++ = digits[ch >> 4];
            *out++ = digits[ch & 0x0f];
        }
        *out++ = '\'';
    }
    *out = '\0';
    *len += need;
    return 0;
}
