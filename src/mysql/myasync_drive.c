/* SPDX-License-Identifier: MIT */
/* The non-blocking drive: every blocking connector call runs as a _start/_cont
 * pair, and while the connector waits, a uv_poll watches its socket and a
 * uv_timer serves its own timeouts. Loop thread.
 *
 * The poll stays started between waits and between queries: each
 * uv_poll_start() and uv_poll_stop() costs libuv one to three epoll_ctl calls,
 * which were most of a probe's system calls. While the connection is idle the
 * armed poll doubles as the check that the server did not close it or send
 * an error (wait_timeout, KILL): that readiness is recorded and the poll
 * stopped, so it does not fire again.
 *
 * Invariant: the poll is closed before we close the socket, and whenever the
 * connector closed it (a failed operation, which always drops the
 * connection before anything else runs), so libuv never watches a
 * descriptor that was reused. */
#include "mysql/myasync_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "core/xalloc.h"
#include "log/log.h"

/* What the connector waits for and what libuv reports, in both directions. */
static const struct {
    int wait;
    int uv;
} event_map[] = {
        {MYSQL_WAIT_READ, UV_READABLE},
        {MYSQL_WAIT_WRITE, UV_WRITABLE},
        {MYSQL_WAIT_EXCEPT, UV_PRIORITIZED},
};

/* Translates MYSQL_WAIT_* bits into UV_* bits (@to_uv) or back. */
static int map_events(int events, bool to_uv)
{
    int out = 0;
    for (size_t i = 0; i < sizeof(event_map) / sizeof(event_map[0]); i++) {
        int from = to_uv ? event_map[i].wait : event_map[i].uv;
        if (events & from)
            out |= to_uv ? event_map[i].uv : event_map[i].wait;
    }
    return out;
}

static void on_poll_closed(uv_handle_t *h)
{
    free(h);
}

static void poll_release(struct myconn *c)
{
    c->idle_event = false;
    if (c->poll == NULL)
        return;
    uv_close((uv_handle_t *)c->poll, on_poll_closed);
    c->poll = NULL;
    c->poll_fd = -1;
    c->poll_events = 0;
}

void myconn_wait_stop(struct myconn *c)
{
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
        return mysql_real_query_cont(&c->ret_int, c->mysql, events);
    case OP_QUERY:
        return mysql_send_query_cont(&c->ret_int, c->mysql, events);
    case OP_RESULT_WAIT:
        /* The answer is there: the first read finds it, instead of failing
         * with EAGAIN and waiting. */
        c->op = OP_RESULT;
        return mysql_read_query_result_start(&c->ret_bool, c->mysql);
    case OP_RESULT:
        return mysql_read_query_result_cont(&c->ret_bool, c->mysql, events);
    case OP_FETCH:
        return mysql_fetch_row_cont(&c->ret_row, c->res, events);
    case OP_NONE:
        break;
    }
    return 0;
}

/* An idle healthy connection gets COM_QUIT when @graceful, which cannot
 * block: its send buffer is empty. Otherwise the socket is shut down first,
 * so that resuming a suspended operation, the connector's result cleanup and
 * COM_QUIT all fail at once instead of waiting on the network. */
void myconn_drop(struct myconn *c, bool graceful)
{
    myconn_wait_stop(c);
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
     * connector's co-routine stack; resuming it lets it fail and clean up.
     * A query waiting for its answer has no operation suspended. */
    if (c->op == OP_RESULT_WAIT)
        c->op = OP_NONE;
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

/* A wait_timeout or KILL error packet, or the server closing: sending on
 * the connection would fail. */
bool myconn_is_stale(struct myconn *c)
{
    if (c->idle_event)
        return true;
    /* Watched while idle: on_idle_poll() would have recorded it. */
    if (c->poll_events & UV_READABLE)
        return false;
    my_socket fd = mysql_get_socket(c->mysql);
    if (fd == INVALID_SOCKET)
        return true;
    char b;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return false;
    return true;
}

static void on_poll(uv_poll_t *h, int status, int events);
static void on_wait_timeout(uv_timer_t *t);

/* Arms the poll and timer for the waits in @status. Returns 0 or a libuv
 * error. */
static int arm(struct myconn *c, int status)
{
    c->wait = status;
    int uvev = map_events(status, true);
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
            c->poll_events = 0;
        }
        if (c->poll_events != uvev) {
            int rc = uv_poll_start(c->poll, uvev, on_poll);
            if (rc < 0)
                return rc;
            c->poll_events = uvev;
        }
    }
    if (status & MYSQL_WAIT_TIMEOUT)
        uv_timer_start(&c->wait_timer, on_wait_timeout, mysql_get_timeout_value_ms(c->mysql), 0);
    return 0;
}

/* Handles the completion of c->op and starts the next operation. Returns its
 * status, or STEP_DONE. */
static int step(struct myconn *c)
{
    enum conn_op op = c->op;
    c->op = OP_NONE;
    switch (op) {
    case OP_CONNECT:
        return myconn_connect_done(c);
    case OP_SETUP:
    case OP_KILL:
        return myconn_setup_done(c, op);
    case OP_QUERY:
        return myconn_send_done(c);
    case OP_RESULT:
        c->ret_int = c->ret_bool != 0 ? 1 : 0;
        return myconn_query_done(c);
    case OP_RESULT_WAIT:
        break;
    case OP_FETCH:
        return myconn_fetch_done(c);
    case OP_NONE:
        break;
    }
    return STEP_DONE;
}

void myconn_drive(struct myconn *c, int status)
{
    for (;;) {
        if (status > 0) {
            int rc = arm(c, status);
            if (rc == 0)
                return;
            bool connecting = !c->connected;
            myconn_drop(c, false);
            myconn_finish_fmt(c, connecting ? MYCONN_ERR_CONNECT : MYCONN_ERR_IO,
                              "%s %s: cannot watch the socket: %s",
                              connecting ? "connect" : "query", c->name, uv_strerror(rc));
            return;
        }
        status = step(c);
        if (status == STEP_DONE)
            return;
    }
}

static void resume(struct myconn *c, int events)
{
    myconn_wait_stop(c);
    myconn_drive(c, op_cont(c, events));
}

/* Readiness of an idle connection: the server closed it or sent an error;
 * the next query reconnects. Writability alone means nothing then. */
static void on_idle_poll(struct myconn *c, int status, int events)
{
    if (status < 0 || (events & ~UV_WRITABLE) != 0) {
        c->idle_event = true;
        uv_poll_stop(c->poll);
        c->poll_events = 0;
    } else if (uv_poll_start(c->poll, UV_READABLE, on_poll) == 0) {
        c->poll_events = UV_READABLE;
    } else {
        uv_poll_stop(c->poll);
        c->poll_events = 0;
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct myconn *c = h->data;
    if (c->wait == 0) {
        on_idle_poll(c, status, events);
        return;
    }
    int io = c->wait & (MYSQL_WAIT_READ | MYSQL_WAIT_WRITE | MYSQL_WAIT_EXCEPT);
    int ready = 0;
    if (status < 0) {
        /* Let the connector's own read or write report the socket error. */
        ready = io;
    } else {
        ready = map_events(events, false);
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
