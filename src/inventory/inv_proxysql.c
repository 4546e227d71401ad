/* SPDX-License-Identifier: MIT */
/* ProxySQL host source over myasync: one connection per cluster, reused
 * across refreshes and dropped on any error; addresses are tried in sorted
 * order. Loop thread. */
#include "inventory/inv_proxysql.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/err.h"
#include "core/parse.h"
#include "core/strmap.h"
#include "core/xalloc.h"
#include "log/log.h"
#include "mysql/myasync.h"

#define CONNECT_TIMEOUT_MS 1000
#define QUERY_TIMEOUT_MS   2000
#define DEFAULT_TTL_SECS   10

static char *addr_key(const char *host, uint16_t port)
{
    if (strchr(host, ':') != NULL)
        return xasprintf("[%s]:%u", host, (unsigned)port);
    return xasprintf("%s:%u", host, (unsigned)port);
}

void inv_proxysql_apply_rows(struct strmap *ignore, const char *const *cells, size_t nrows,
                             size_t ncols, uint64_t now_ms, uint64_t ttl_ms, struct inv_hosts *out)
{
    if (ncols < 3)
        return;
    /* A lagging server leaves the ignore list only after every row was seen,
     * as the original defers that removal. */
    char **unignore = xcalloc(nrows ? nrows : 1, sizeof(*unignore));
    size_t nun = 0;
    for (size_t r = 0; r < nrows; r++) {
        const char *host = cells[r * ncols];
        const char *port_s = cells[r * ncols + 1];
        const char *status = cells[r * ncols + 2];
        uint32_t port;
        if (host == NULL || host[0] == '\0' || port_s == NULL || status == NULL ||
            parse_u32(port_s, &port) < 0 || port == 0 || port > 65535)
            continue;
        char *key = addr_key(host, (uint16_t)port);
        uint64_t *until = strmap_get(ignore, key);
        if (strcmp(status, "ONLINE") == 0) {
            if (until != NULL && *until > now_ms) {
                log_debug("inventory: proxysql: %s is ONLINE but still ignored for %" PRIu64 " ms",
                          key, *until - now_ms);
            } else {
                inv_hosts_add(out, host, (uint16_t)port);
            }
        } else if (strcmp(status, "SHUNNED_REPLICATION_LAG") == 0) {
            inv_hosts_add(out, host, (uint16_t)port);
            unignore[nun++] = key;
            key = NULL;
        } else {
            if (until == NULL) {
                until = xmalloc(sizeof(*until));
                strmap_put(ignore, key, until);
            }
            *until = now_ms + ttl_ms;
        }
        free(key);
    }
    for (size_t i = 0; i < nun; i++) {
        free(strmap_del(ignore, unignore[i]));
        free(unignore[i]);
    }
    free(unignore);
}

void inv_proxysql_ignore_deinit(struct strmap *ignore)
{
    strmap_deinit_values(ignore, free);
}

struct inv_proxysql {
    struct loop *loop;
    const struct config_cluster *cc;
    char **addrs; /* sorted copy of the configured addresses */
    size_t naddrs;
    struct myconn *conn;
    size_t conn_idx; /* address of conn */
    bool busy;
    bool scanning;   /* trying addresses in order, not reusing a connection */
    uint64_t now_ms; /* of the refresh in flight */
    struct err last; /* last connect error while trying addresses */
    struct strmap ignore;
    char sql[160];
    inv_source_done_fn *done;
    void *arg;
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

struct inv_proxysql *inv_proxysql_new(struct loop *loop, const struct config_cluster *cc)
{
    struct inv_proxysql *p = xcalloc(1, sizeof(*p));
    p->loop = loop;
    p->cc = cc;
    p->naddrs = cc->proxysql_addresses.len;
    p->addrs = xcalloc(p->naddrs ? p->naddrs : 1, sizeof(*p->addrs));
    for (size_t i = 0; i < p->naddrs; i++)
        p->addrs[i] = xstrdup(cc->proxysql_addresses.v[i]);
    qsort(p->addrs, p->naddrs, sizeof(*p->addrs), cmp_str);
    strmap_init(&p->ignore);
    snprintf(p->sql, sizeof(p->sql),
             "SELECT srv_host, srv_port, status FROM stats_mysql_connection_pool WHERE "
             "hostgroup=%" PRId64,
             cc->proxysql_hostgroup_id);
    return p;
}

void inv_proxysql_free(struct inv_proxysql *p)
{
    if (p == NULL)
        return;
    myconn_free(p->conn);
    for (size_t i = 0; i < p->naddrs; i++)
        free(p->addrs[i]);
    free(p->addrs);
    inv_proxysql_ignore_deinit(&p->ignore);
    free(p);
}

static void finish(struct inv_proxysql *p, const struct inv_hosts *hosts, const struct err *err)
{
    p->busy = false;
    p->done(p->arg, hosts, err);
}

static void try_address(struct inv_proxysql *p, size_t idx);

static void on_rows(struct myconn *c, enum myconn_status status, const struct myresult *res,
                    const char *errmsg, void *arg)
{
    struct inv_proxysql *p = arg;
    if (status == MYCONN_OK) {
        struct inv_hosts hosts = {0};
        int64_t ttl_s = p->cc->proxysql_ignore_server_ttl_secs > 0
                                ? p->cc->proxysql_ignore_server_ttl_secs
                                : DEFAULT_TTL_SECS;
        inv_proxysql_apply_rows(&p->ignore, res->cells, res->nrows, res->ncols, p->now_ms,
                                (uint64_t)ttl_s * 1000, &hosts);
        finish(p, &hosts, NULL);
        inv_hosts_deinit(&hosts);
        return;
    }
    char name[300];
    snprintf(name, sizeof(name), "%s", myconn_name(c));
    myconn_free(c);
    p->conn = NULL;
    if (status == MYCONN_ERR_CONNECT) {
        err_set(&p->last, -ECONNREFUSED, "proxysql %s: %s", name, errmsg);
        log_debug("inventory: %s: %s", p->cc->name, p->last.msg);
        /* A kept connection that cannot reconnect: scan from the first address. */
        size_t next = p->scanning ? p->conn_idx + 1 : 0;
        p->scanning = true;
        try_address(p, next);
        return;
    }
    struct err err;
    err_set(&err, -EIO, "proxysql %s: hostgroup %" PRId64 ": %s", name,
            p->cc->proxysql_hostgroup_id, errmsg);
    finish(p, NULL, &err);
}

static void start_query(struct inv_proxysql *p)
{
    if (myconn_query(p->conn, p->sql, on_rows, p) == 0)
        return;
    /* Busy cannot happen (one refresh at a time); drop the connection anyway. */
    myconn_free(p->conn);
    p->conn = NULL;
    struct err err;
    err_set(&err, -EBUSY, "proxysql %s: connection busy", p->addrs[p->conn_idx]);
    finish(p, NULL, &err);
}

static void try_address(struct inv_proxysql *p, size_t idx)
{
    for (; idx < p->naddrs; idx++) {
        char *host;
        uint16_t port;
        if (inv_split_host_port(p->addrs[idx], 3306, &host, &port) < 0) {
            err_set(&p->last, -EINVAL, "proxysql %s: bad address", p->addrs[idx]);
            continue;
        }
        struct myconn_params mp = {
                .host = host,
                .port = port,
                .user = p->cc->proxysql_user,
                .password = p->cc->proxysql_password,
                .database = "stats",
                .connect_timeout_ms = CONNECT_TIMEOUT_MS,
                .query_timeout_ms = QUERY_TIMEOUT_MS,
        };
        p->conn = myconn_new(p->loop, &mp);
        free(host);
        p->conn_idx = idx;
        start_query(p);
        return;
    }
    struct err err = p->last;
    if (err.msg[0] == '\0')
        err_set(&err, -EINVAL, "proxysql: no address configured");
    finish(p, NULL, &err);
}

void inv_proxysql_refresh(struct inv_proxysql *p, uint64_t now_ms, inv_source_done_fn *done,
                          void *arg)
{
    p->done = done;
    p->arg = arg;
    p->now_ms = now_ms;
    p->busy = true;
    err_clear(&p->last);
    p->scanning = p->conn == NULL;
    if (p->conn != NULL)
        start_query(p);
    else
        try_address(p, 0);
}
