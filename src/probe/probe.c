/* SPDX-License-Identifier: MIT */
/* One probe per (cluster, host): runs the MetricQuery over a reused myasync
 * connection and keeps the last result. Loop thread. Invariant: at most one
 * query per probe is in flight; probe_start() while busy does nothing. Logs
 * state changes only (ok <-> failing), never one line per failed probe. */
#include "probe/probe.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <uv.h>

#include "core/parse.h"
#include "core/xalloc.h"
#include "log/log.h"
#include "loop/loop.h"
#include "metrics/metrics.h"
#include "mysql/myasync.h"

#define PROBE_DEFAULT_TIMEOUT_MS 1000
/* MySQL 8.4 removed SHOW SLAVE STATUS and answers it with a syntax error. */
#define ER_PARSE_ERROR 1064

enum probe_health { HEALTH_UNKNOWN, HEALTH_OK, HEALTH_FAILING };

struct probe {
    struct loop *loop;
    char *name;  /* "host:port" or "host:port (cluster c)", for logs */
    char *query; /* never NULL */
    enum probe_query_kind kind;
    bool replica_syntax; /* this server only knows SHOW REPLICA STATUS */
    uint32_t cache_ms;
    struct myconn *conn;
    bool busy;
    uint64_t started_ns;
    struct probe_result last;
    enum probe_health health;
    uint64_t failures; /* consecutive failed probes */
};

/* ---- pure parts ---- */

static const char *skip_space(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\f' || *s == '\v')
        s++;
    return s;
}

enum probe_query_kind probe_query_kind(const char *query)
{
    if (query == NULL)
        return PROBE_QUERY_REPLICATION;
    const char *q = skip_space(query);
    if (*q == '\0')
        return PROBE_QUERY_REPLICATION;
    if (strncasecmp(q, "select", 6) == 0)
        return PROBE_QUERY_SELECT;
    if (strncasecmp(q, "show", 4) == 0) {
        const char *g = skip_space(q + 4);
        if (g != q + 4 && strncasecmp(g, "global", 6) == 0)
            return PROBE_QUERY_SHOW_GLOBAL;
    }
    return PROBE_QUERY_UNSUPPORTED;
}

/* Copies @s for a message: at most 64 bytes, control characters as '?'. */
static void quote_value(char *out, size_t size, const char *s)
{
    size_t max = size - 4 < 64 ? size - 4 : 64;
    size_t n = 0;
    for (; n < max && s[n] != '\0'; n++) {
        unsigned char ch = (unsigned char)s[n];
        out[n] = s[n];
        if (ch < 0x20 || ch == 0x7f)
            out[n] = '?';
    }
    out[n] = '\0';
    if (s[n] != '\0')
        memcpy(out + n, "...", 4);
}

static int parse_cell(const char *cell, const char *what, double *value, char *msg)
{
    if (cell == NULL) {
        snprintf(msg, 256, "metric query returned NULL%s%s", what ? " for " : "", what ? what : "");
        return -EINVAL;
    }
    if (parse_double(cell, value) < 0) {
        char q[72];
        quote_value(q, sizeof(q), cell);
        snprintf(msg, 256, "metric query returned a non-numeric value%s%s: \"%s\"",
                 what ? " for " : "", what ? what : "", q);
        return -EINVAL;
    }
    return 0;
}

static int find_column(size_t ncols, const char *const *colnames, const char *a, const char *b)
{
    for (size_t i = 0; i < ncols; i++) {
        if (colnames[i] == NULL)
            continue;
        if (strcasecmp(colnames[i], a) == 0 || (b != NULL && strcasecmp(colnames[i], b) == 0))
            return (int)i;
    }
    return -1;
}

static int parse_lag(size_t nrows, size_t ncols, const char *const *colnames,
                     const char *const *cells, double *value, char *msg)
{
    if (nrows == 0) {
        snprintf(msg, 256, "not a replica: replication status returned no rows");
        return -EINVAL;
    }
    int lag_col = find_column(ncols, colnames, "Seconds_Behind_Master", "Seconds_Behind_Source");
    if (lag_col < 0) {
        snprintf(msg, 256, "replication status has no Seconds_Behind_Master column");
        return -EINVAL;
    }
    int io_col = find_column(ncols, colnames, "Slave_IO_Running", "Replica_IO_Running");
    int sql_col = find_column(ncols, colnames, "Slave_SQL_Running", "Replica_SQL_Running");
    int chan_col = find_column(ncols, colnames, "Channel_Name", "Connection_name");
    double worst = 0;
    for (size_t r = 0; r < nrows; r++) {
        const char *const *row = cells + r * ncols;
        const char *lag = row[lag_col];
        const char *chan = chan_col >= 0 && row[chan_col] && *row[chan_col] ? row[chan_col] : NULL;
        if (lag == NULL) {
            const char *io = io_col >= 0 && row[io_col] ? row[io_col] : "?";
            const char *sql = sql_col >= 0 && row[sql_col] ? row[sql_col] : "?";
            snprintf(msg, 256, "replication not running%s%.64s%s; %s=%.16s, %s=%.16s",
                     chan ? " on channel '" : "", chan ? chan : "", chan ? "'" : "",
                     io_col >= 0 ? colnames[io_col] : "Slave_IO_Running", io,
                     sql_col >= 0 ? colnames[sql_col] : "Slave_SQL_Running", sql);
            return -EINVAL;
        }
        double v;
        if (parse_double(lag, &v) < 0) {
            char q[72];
            quote_value(q, sizeof(q), lag);
            snprintf(msg, 256, "replication status has a non-numeric %s: \"%s\"", colnames[lag_col],
                     q);
            return -EINVAL;
        }
        if (r == 0 || v > worst)
            worst = v;
    }
    *value = worst;
    return 0;
}

int probe_parse_value(const char *query, size_t nrows, size_t ncols, const char *const *colnames,
                      const char *const *cells, double *value, char *msg)
{
    enum probe_query_kind kind = probe_query_kind(query);
    if (kind == PROBE_QUERY_UNSUPPORTED) {
        snprintf(msg, 256, "Unsupported metrics query type: %.200s", query);
        return -EINVAL;
    }
    if (kind == PROBE_QUERY_REPLICATION)
        return parse_lag(nrows, ncols, colnames, cells, value, msg);
    if (nrows == 0) {
        snprintf(msg, 256, "metric query returned no rows");
        return -EINVAL;
    }
    if (nrows > 1) {
        snprintf(msg, 256, "metric query returned %zu rows, expected one", nrows);
        return -EINVAL;
    }
    if (kind == PROBE_QUERY_SELECT) {
        if (ncols != 1) {
            snprintf(msg, 256, "metric query returned %zu columns, expected one", ncols);
            return -EINVAL;
        }
        return parse_cell(cells[0], NULL, value, msg);
    }
    if (ncols != 2) {
        snprintf(msg, 256, "metric query returned %zu columns, expected two (name, value)", ncols);
        return -EINVAL;
    }
    char what[72];
    if (cells[0] != NULL)
        quote_value(what, sizeof(what), cells[0]);
    return parse_cell(cells[1], cells[0] != NULL ? what : NULL, value, msg);
}

/* ---- the probe ---- */

static void complete(struct probe *p, enum probe_status status, double value, const char *msg)
{
    uint64_t us = (uv_hrtime() - p->started_ns) / 1000;
    metrics_inc(METRICS_PROBES_TOTAL);
    if (status != PROBE_OK)
        metrics_inc(METRICS_PROBES_ERROR);
    metrics_observe_probe_latency_us(us);

    p->busy = false;
    p->last.status = status;
    p->last.value = status == PROBE_OK ? value : 0;
    p->last.at_ms = loop_now_ms(p->loop);
    if (status == PROBE_OK || msg == NULL)
        p->last.msg[0] = '\0';
    else
        snprintf(p->last.msg, sizeof(p->last.msg), "%s", msg);

    if (status == PROBE_OK) {
        if (p->health == HEALTH_FAILING)
            log_info("probe: %s: ok again after %llu failed probes", p->name,
                     (unsigned long long)p->failures);
        p->health = HEALTH_OK;
        p->failures = 0;
        return;
    }
    p->failures++;
    if (p->health != HEALTH_FAILING)
        log_warn("probe: %s: failing: %s", p->name, p->last.msg);
    else
        log_debug("probe: %s: still failing (%llu): %s", p->name, (unsigned long long)p->failures,
                  p->last.msg);
    p->health = HEALTH_FAILING;
}

static const char *probe_sql(const struct probe *p)
{
    if (p->kind != PROBE_QUERY_REPLICATION)
        return p->query;
    return p->replica_syntax ? "SHOW REPLICA STATUS" : "SHOW SLAVE STATUS";
}

static void on_query_done(struct myconn *c, enum myconn_status status, const struct myresult *res,
                          const char *errmsg, void *arg)
{
    struct probe *p = arg;
    if (status == MYCONN_OK) {
        double value = 0;
        char msg[256];
        if (probe_parse_value(p->query, res->nrows, res->ncols, res->colnames, res->cells, &value,
                              msg) < 0) {
            char full[256];
            snprintf(full, sizeof(full), "probe %s: %s", myconn_name(c), msg);
            complete(p, PROBE_ERR, 0, full);
            return;
        }
        complete(p, PROBE_OK, value, NULL);
        return;
    }
    if (p->kind == PROBE_QUERY_REPLICATION && status == MYCONN_ERR_QUERY &&
        myconn_last_errno(c) == ER_PARSE_ERROR) {
        /* Flip between the two spellings once per failure; the one that
         * parses is kept for the following probes. */
        p->replica_syntax = !p->replica_syntax;
        if (p->replica_syntax) {
            log_info("probe: %s: server rejects SHOW SLAVE STATUS, using SHOW REPLICA STATUS",
                     p->name);
            if (myconn_query(c, probe_sql(p), on_query_done, p) == 0)
                return;
        }
    }
    complete(p, status == MYCONN_ERR_CONNECT ? PROBE_ERR_DIAL : PROBE_ERR, 0, errmsg);
}

struct probe *probe_new(struct loop *loop, const struct probe_params *params)
{
    struct probe *p = xcalloc(1, sizeof(*p));
    p->loop = loop;
    p->query = xstrdup(params->query ? params->query : "");
    p->kind = probe_query_kind(p->query);
    p->cache_ms = params->cache_ms;
    uint32_t timeout_ms = params->timeout_ms ? params->timeout_ms : PROBE_DEFAULT_TIMEOUT_MS;
    struct myconn_params cp = {
            .host = params->host,
            .port = params->port,
            .user = params->user,
            .password = params->password,
            /* As the original: unqualified names resolve in information_schema. */
            .database = "information_schema",
            .charset = NULL,
            .collation = params->collation,
            .connect_timeout_ms = timeout_ms,
            .query_timeout_ms = timeout_ms,
            .connect_gate = params->connect_gate,
    };
    p->conn = myconn_new(loop, &cp);
    if (params->cluster != NULL && *params->cluster != '\0')
        p->name = xasprintf("%s (cluster %s)", myconn_name(p->conn), params->cluster);
    else
        p->name = xstrdup(myconn_name(p->conn));
    return p;
}

void probe_free(struct probe *p)
{
    if (p == NULL)
        return;
    myconn_free(p->conn);
    free(p->query);
    free(p->name);
    free(p);
}

void probe_start(struct probe *p, uint64_t now_ms)
{
    if (p->busy)
        return;
    if (p->cache_ms > 0 && p->last.status == PROBE_OK && now_ms >= p->last.at_ms &&
        now_ms - p->last.at_ms < p->cache_ms)
        return;
    p->started_ns = uv_hrtime();
    if (p->kind == PROBE_QUERY_UNSUPPORTED) {
        char msg[256];
        snprintf(msg, sizeof(msg), "Unsupported metrics query type: %.200s", p->query);
        complete(p, PROBE_ERR, 0, msg);
        return;
    }
    p->busy = true;
    if (myconn_query(p->conn, probe_sql(p), on_query_done, p) < 0) {
        /* Only possible if the connection is shared, which it is not. */
        complete(p, PROBE_ERR, 0, "probe: connection busy");
    }
}

bool probe_is_busy(const struct probe *p)
{
    return p->busy;
}

const struct probe_result *probe_last(const struct probe *p)
{
    return &p->last;
}

void probe_set_cache_ms(struct probe *p, uint32_t cache_ms)
{
    p->cache_ms = cache_ms;
}
