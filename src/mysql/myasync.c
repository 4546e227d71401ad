/* SPDX-License-Identifier: MIT */
/* Connections to MySQL/MariaDB servers for the loop: the public API and the
 * connection's life, from the name lookup through dialling each address and
 * the setup statements to closing it, each phase bounded by a deadline.
 * Loop thread (myasync_hex_literal: any thread). Invariant: one query at a
 * time per connection, and its callback runs exactly once, never from inside
 * myconn_query(). */
#include "mysql/myasync_impl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <errmsg.h>
#include <openssl/ssl.h>

#include "core/xalloc.h"
#include "log/log.h"
#include "loop/loop.h"

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

/* Fails the connect phase with the connector's error. */
static int fail_connect(struct myconn *c, const char *what)
{
    char dial[400];
    dial_name(c, dial, sizeof(dial));
    char msg[512];
    c->last_errno = mysql_errno(c->mysql);
    snprintf(msg, sizeof(msg), "connect %s: %s%s%s [mysql %u]", dial, what ? what : "",
             what ? ": " : "", mysql_error(c->mysql), c->last_errno);
    myconn_drop(c, false);
    myconn_finish(c, MYCONN_ERR_CONNECT, msg);
    return STEP_DONE;
}

static void on_deadline(uv_timer_t *t);

void myconn_deadline_start(struct myconn *c, uint32_t ms)
{
    c->deadline_at = uv_now(c->uv) + ms;
    if (!uv_is_active((uv_handle_t *)&c->deadline) || uv_timer_get_due_in(&c->deadline) > ms)
        uv_timer_start(&c->deadline, on_deadline, ms, 0);
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
    /* The co-routine stack: MYCONN_COSTACK_SIZE says why 64 KB. On x86-64
     * the connector switches to it with its own assembly, which the
     * sanitizers never see; only uninstrumented library code and libc
     * interceptors run there, so ASan (even with
     * detect_stack_use_after_return=1), LSan and TSan stay quiet. Should a
     * report ever point into that stack, ASAN_OPTIONS=
     * detect_stack_use_after_return=0 is the documented remedy, not a
     * suppression. */
    size_t stack_size = MYCONN_COSTACK_SIZE;
    if (mysql_options(c->mysql, MYSQL_OPT_NONBLOCK, &stack_size) != 0) {
        log_error("mysql %s: cannot enable the non-blocking API: out of memory", c->name);
        abort();
    }
    /* Always TCP: the connector turns "localhost" into the unix socket, but
     * we pass numeric addresses anyway, like the Go driver. */
    /* Probe answers are a few dozen bytes; the connector grows the buffer for
     * larger packets, so a small start (the server's own minimum for
     * net_buffer_length) saves ~7 KB per connection (3.5 MB at 500 hosts). */
    unsigned long net_buffer = 1024;
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
    /* The connector's 16 KB read-ahead buffer is calloc()ed here, before
     * the first wait. From the heap it keeps two pages resident: the one a
     * probe's answer is read into, and its last, where glibc writes the
     * next chunk's header. Mapped on its own, only the first page is ever
     * touched: 4 KB less per connection (2 MB at 500 hosts). The threshold
     * is back to glibc's default before anything else runs on this thread;
     * an HTTP thread allocating 16-128 KB in between just gets a mapping. */
    mallopt(M_MMAP_THRESHOLD, (int)MYCONN_READ_AHEAD_BYTES);
    int status = mysql_real_connect_start(&c->ret_mysql, c->mysql, c->addrs[c->addr_idx], c->user,
                                          c->password, c->database, c->port, NULL, 0);
    mallopt(M_MMAP_THRESHOLD, (int)MYCONN_HEAP_MMAP_THRESHOLD);
    return status;
}

static int next_setup(struct myconn *c);

int myconn_connect_done(struct myconn *c)
{
    if (c->ret_mysql == NULL) {
        unsigned int code = mysql_errno(c->mysql);
        bool unreachable = code == CR_CONNECTION_ERROR || code == CR_CONN_HOST_ERROR;
        if (unreachable && c->addr_idx + 1 < c->naddrs) {
            log_debug("mysql %s: %s: %s [mysql %u], trying the next address", c->name,
                      c->addrs[c->addr_idx], mysql_error(c->mysql), code);
            myconn_drop(c, false);
            c->addr_idx++;
            return start_connect(c);
        }
        return fail_connect(c, NULL);
    }
    /* The connection attributes (client name, version, pid) went with the
     * handshake; a new connection gets a new handle. Frees 8 KB. */
    mysql_options(c->mysql, MYSQL_OPT_CONNECT_ATTR_RESET, NULL);
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
    return myconn_start_query(c);
}

int myconn_setup_done(struct myconn *c, enum conn_op op)
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

static void on_deadline(uv_timer_t *t)
{
    struct myconn *c = t->data;
    if (!c->busy || c->deadline_at == 0)
        return;
    uint64_t now = uv_now(c->uv);
    if (now < c->deadline_at) {
        /* Armed for an earlier operation: the one running now has time. */
        uv_timer_start(&c->deadline, on_deadline, c->deadline_at - now, 0);
        return;
    }
    bool connecting = !c->connected;
    uint32_t ms = connecting ? c->connect_timeout_ms : c->cur_timeout_ms;
    char dial[400];
    dial_name(c, dial, sizeof(dial));
    if (c->resolving != NULL) {
        c->resolving->c = NULL;
        uv_cancel((uv_req_t *)&c->resolving->req);
        c->resolving = NULL;
        myconn_finish_fmt(c, MYCONN_ERR_CONNECT,
                          "connect %s: resolving the host timed out after %u ms", c->name, ms);
        return;
    }
    /* The server goes on running a query whose client is gone; the next
     * connection kills it, so that a stuck server does not collect one
     * stuck query per timeout. */
    if (!connecting && c->mysql != NULL) {
        c->kill_thread_id = mysql_thread_id(c->mysql);
        c->kill_until_ms = uv_now(c->uv) + MYCONN_KILL_WINDOW_MS;
    }
    myconn_drop(c, false);
    if (connecting)
        myconn_finish_fmt(c, MYCONN_ERR_CONNECT, "connect %s: timed out after %u ms", dial, ms);
    else
        myconn_finish_fmt(c, MYCONN_ERR_TIMEOUT, "query %s: timed out after %u ms", c->name, ms);
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
        myconn_finish_fmt(c, MYCONN_ERR_CONNECT, "connect %s: resolve %s: %s", c->name, c->host,
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
        myconn_finish_fmt(c, MYCONN_ERR_CONNECT, "connect %s: resolve %s: no IPv4 or IPv6 address",
                          c->name, c->host);
        return;
    }
    c->addr_idx = 0;
    myconn_drive(c, start_connect(c));
}

static bool is_ip_literal(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return uv_inet_pton(AF_INET, host, buf) == 0 || uv_inet_pton(AF_INET6, host, buf) == 0;
}

/* Connects, resolving the name on the thread pool unless it is an IP. */
void myconn_connect_begin(struct myconn *c)
{
    myconn_deadline_start(c, c->connect_timeout_ms);
    if (c->collation != NULL && (!is_identifier(c->collation) || !is_identifier(c->charset))) {
        myconn_finish_fmt(c, MYCONN_ERR_CONNECT,
                          "connect %s: invalid charset or collation name \"%s\"", c->name,
                          c->collation);
        return;
    }
    c->naddrs = 0;
    c->addr_idx = 0;
    if (is_ip_literal(c->host)) {
        snprintf(c->addrs[0], sizeof(c->addrs[0]), "%s", c->host);
        c->naddrs = 1;
        myconn_drive(c, start_connect(c));
        return;
    }
    struct resolve_req *req = xcalloc(1, sizeof(*req));
    req->c = c;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int rc = uv_getaddrinfo(c->uv, &req->req, on_resolved, c->host, NULL, &hints);
    if (rc < 0) {
        free(req);
        myconn_finish_fmt(c, MYCONN_ERR_CONNECT, "connect %s: resolve %s: %s", c->name, c->host,
                          uv_strerror(rc));
        return;
    }
    c->resolving = req;
}

static void on_kick(struct loop_deferred *d)
{
    struct myconn *c = (struct myconn *)(void *)((char *)d - offsetof(struct myconn, kick));
    if (!c->busy)
        return;
    if (c->mysql != NULL && myconn_is_stale(c)) {
        log_debug("mysql %s: idle connection was closed by the server, reconnecting", c->name);
        myconn_drop(c, false);
    }
    if (c->mysql == NULL) {
        if (c->connect_gate != NULL && !c->in_gate) {
            if (!loop_gate_enter(c->connect_gate, &c->kick))
                return; /* called again when a place is free */
            c->in_gate = true;
        }
        myconn_connect_begin(c);
        return;
    }
    myconn_drive(c, myconn_start_query(c));
}

int myasync_library_init(void)
{
    /* The connector initialises OpenSSL at once (for TLS the daemon never
     * asks of it) and with it every error string of every OpenSSL library:
     * 0.6 MB of an idle daemon. Saying first that they are not wanted keeps
     * them out for the process's life; an HTTPS inventory's TLS error then
     * names OpenSSL's reason by number ("error:0A00010B:lib(20)::
     * reason(267)", which `openssl errstr 0A00010B` spells out). Nor is
     * every cipher and digest registered under its legacy name (0.3 MB):
     * TLS in OpenSSL 3 fetches algorithms from providers, and nothing here
     * reads passphrase-protected PEM keys, the one thing that looks
     * ciphers up by those names. The configuration file is still read. */
    OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_SSL_STRINGS | OPENSSL_INIT_NO_LOAD_CRYPTO_STRINGS |
                             OPENSSL_INIT_NO_ADD_ALL_CIPHERS | OPENSSL_INIT_NO_ADD_ALL_DIGESTS,
                     NULL);
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
    c->loop = loop;
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
        c->name = xasprintf("[%s]:%u", c->host, (unsigned)c->port);
    else
        c->name = xasprintf("%s:%u", c->host, (unsigned)c->port);
    c->poll_fd = -1;
    c->connect_gate = p->connect_gate;
    loop_deferred_init(&c->kick, on_kick);
    uv_timer_init(c->uv, &c->wait_timer);
    uv_timer_init(c->uv, &c->deadline);
    c->wait_timer.data = c->deadline.data = c;
    return c;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct myconn *c = h->data;
    if (--c->handles_open == 0) {
        free(c->name);
        free(c);
    }
}

void myconn_free(struct myconn *c)
{
    if (c == NULL)
        return;
    c->cb = NULL;
    c->freeing = true;
    if (c->connect_gate != NULL)
        loop_gate_cancel(c->connect_gate, &c->kick); /* waiting, or handed a place */
    else
        loop_defer_cancel(c->loop, &c->kick);
    myconn_gate_leave(c); /* connecting inside the gate */
    if (c->resolving != NULL) {
        c->resolving->c = NULL;
        uv_cancel((uv_req_t *)&c->resolving->req);
        c->resolving = NULL;
    }
    myconn_drop(c, !c->busy);
    myconn_rows_free(&c->rows);
    myconn_rows_free(&c->spare);
    free(c->sql);
    free(c->host);
    free(c->user);
    if (c->password != NULL)
        memset(c->password, 0, strlen(c->password));
    free(c->password);
    free(c->database);
    free(c->charset);
    free(c->collation);
    c->handles_open = 2;
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
    size_t len = strlen(sql);
    if (c->sql == NULL || len >= c->sql_cap) {
        free(c->sql);
        c->sql = xmalloc(len + 1);
        c->sql_cap = len + 1;
    }
    memcpy(c->sql, sql, len + 1);
    c->sql_len = len;
    c->cb = cb;
    c->arg = arg;
    loop_defer(c->loop, &c->kick);
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
