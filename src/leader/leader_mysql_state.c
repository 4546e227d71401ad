/* SPDX-License-Identifier: MIT */
/* State reloads of the MySQL backend leader on the state connection: our
 * health row and the live services of our Domain, the loads of
 * throttled_apps and skipped_hosts (docs/ha.md#loading-operator-state;
 * bounded by their caps, bad rows rejected and logged once), and the
 * ShareDomain peers' health. Loop thread. */
#include "leader/leader_mysql_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/xalloc.h"
#include "leader/share_poll.h"
#include "log/log.h"
#include "loop/loop_timer.h"
#include "snapshot/app_rule.h"
#include "throttler/app_throttle.h"
#include "throttler/skipped_hosts.h"
#include "throttler/throttler.h"

#define HEALTH_INTERVAL_MS 2000
#define RELOAD_INTERVAL_MS 10000
/* The first reload waits for the first election round: a node elected there
 * loads at once anyway, and a load begun before its election would be read
 * again (it may predate the last writes of the previous leader), which with
 * 100,000 rows doubles the time to serve. */
#define RELOAD_FIRST_MS   1500
#define SHARE_INTERVAL_MS 1000
/* A state load reads up to MaxThrottledApps or MaxSkippedHosts rows: 100,000
 * take about 0.3 s on a healthy backend, so this only bounds a stalled one:
 * 4 s plus 1 ms per 50 rows asked for (6 s at the default caps). */
#define LOAD_TIMEOUT_MS          4000
#define LOAD_ROWS_PER_TIMEOUT_MS 50

/* The value of set-like strmaps (which need a non-NULL pointer). */
static char marker;

/* ---- health and the services of our Domain ---- */

static void on_domain_services(struct myconn *c, enum myconn_status status,
                               const struct myresult *res, const char *errmsg, void *arg)
{
    (void)c;
    struct mysql_leader *m = arg;
    if (status != MYCONN_OK) {
        leader_mysql_chan_fail(m, &m->health_chan, status, errmsg);
    } else {
        leader_mysql_chan_ok(m, &m->health_chan);
        leader_mysql_svc_fill(&m->domain_services, res, m->ids.domain.text);
        leader_mysql_publish_status(m);
    }
    leader_mysql_state_kick(m);
}

static void on_health(struct myconn *c, enum myconn_status status, const struct myresult *res,
                      const char *errmsg, void *arg)
{
    (void)res;
    struct mysql_leader *m = arg;
    if (status != MYCONN_OK) {
        leader_mysql_chan_fail(m, &m->health_chan, status, errmsg);
        leader_mysql_state_kick(m);
        return;
    }
    leader_mysql_send(c, backend_sql_healthy_domain_services(&m->ids), on_domain_services, m);
}

/* ---- loads of throttled_apps and skipped_hosts ---- */

/* @s shortened and with control bytes escaped, for log lines about rows a
 * hostile writer may have filled. */
static const char *printable(const char *s, char *buf, size_t size)
{
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)(s ? s : "(null)");
    for (; *p && o + 8 < size; p++) {
        if (*p < 0x20 || *p == 0x7f)
            o += (size_t)snprintf(buf + o, size - o, "\\x%02x", *p);
        else
            buf[o++] = (char)*p;
    }
    if (*p != '\0') {
        /* Cut on a character boundary, then say it was cut. */
        while (o > 0 && ((unsigned char)buf[o - 1] & 0xC0) == 0x80)
            o--;
        if (o > 0 && ((unsigned char)buf[o - 1] & 0xC0) == 0xC0)
            o--;
        snprintf(buf + o, size - o, "...");
        return buf;
    }
    buf[o] = '\0';
    return buf;
}

/* One load's answer, read row by row. */
struct load {
    struct mysql_leader *m;
    struct table_load *t;
    const struct myresult *res;
    uint64_t now_ms;
    size_t row;         /* the next row to read */
    size_t taken;       /* the rows handed out */
    bool over;          /* a live row past the cap was met */
    struct strmap seen; /* "name\x1freason" of the rows this load rejected */
};

/* What differs between the loads of the two tables. */
struct load_kind {
    const char *table;   /* also the name its failures are logged under */
    const char *cap_key; /* the config key of the cap */
    size_t ncols;
    char *(*sql)(size_t limit);
    /* Parses one row into @out (struct backend_app or backend_host). */
    enum backend_row (*parse)(const char *const *cells, uint64_t now_ms, void *out,
                              struct err *err);
    /* Hands the load's rows to the throttler. */
    void (*take)(struct load *ld);
    size_t row_bytes_max; /* 0: BACKEND_LOAD_ROW_BYTES_MAX */
};

static enum backend_row parse_app(const char *const *cells, uint64_t now_ms, void *out,
                                  struct err *err)
{
    return backend_parse_app(cells, now_ms, out, err);
}

static enum backend_row parse_host(const char *const *cells, uint64_t now_ms, void *out,
                                   struct err *err)
{
    return backend_parse_host(cells, now_ms, out, err);
}

/* Checks the answer to a load of @t. True when its rows are to be read;
 * false when the load failed or must be asked again. */
static bool load_begin(struct load *ld, struct table_load *t, struct myconn *c,
                       enum myconn_status status, const struct myresult *res, const char *errmsg)
{
    struct mysql_leader *m = t->m;
    if (status != MYCONN_OK || res->ncols < t->kind->ncols) {
        leader_mysql_query_failed(m, &t->chan, c, status,
                                  status != MYCONN_OK ? errmsg : "unexpected result shape");
        leader_mysql_state_kick(m);
        return false;
    }
    leader_mysql_chan_ok(m, &t->chan);
    if (m->job_gen != m->ops_gen) {
        /* An operator change landed while this was in flight; the rows may
         * predate it. Read again rather than undo it. */
        t->want = true;
        leader_mysql_state_kick(m);
        return false;
    }
    *ld = (struct load){.m = m, .t = t, .res = res, .now_ms = clock_wall_ms()};
    strmap_init(&ld->seen);
    return true;
}

/* Logs a row rejected by this load that the previous load did not reject,
 * so a bad row costs one line, not one every 10 s. */
static void load_reject(struct load *ld, const char *name, const char *reason)
{
    char key[600];
    snprintf(key, sizeof(key), "%s\x1f%s", name ? name : "", reason);
    if (strmap_get(&ld->t->bad, key) == NULL) {
        char pn[200];
        log_warn("leader: backend %s: %s: rejecting row \"%s\": %s", ld->m->backend,
                 ld->t->kind->table, printable(name, pn, sizeof(pn)), reason);
    }
    strmap_put(&ld->seen, key, &marker);
}

/* Parses the next live row into @out (struct backend_app or backend_host).
 * False at the end, or at the cap: the statement asks for one row more than
 * the cap, to tell "exactly the cap" from "more than the cap". */
static bool load_next(struct load *ld, void *out)
{
    const struct myresult *res = ld->res;
    while (ld->row < res->nrows) {
        const char *const *cells = res->cells + ld->row++ * res->ncols;
        struct err err = {0};
        enum backend_row kind = ld->t->kind->parse(cells, ld->now_ms, out, &err);
        if (kind == BACKEND_ROW_BAD)
            load_reject(ld, cells[0], err.msg);
        if (kind != BACKEND_ROW_OK)
            continue;
        if (ld->taken == ld->t->max) {
            ld->over = true;
            return false;
        }
        ld->taken++;
        return true;
    }
    return false;
}

/* After the rows went to the throttler: logs once when a load found more
 * live rows than the cap (and again only after a load that did not), keeps
 * the rejected rows for the next load, and serves a new leader whose state
 * is now loaded. */
static void load_end(struct load *ld)
{
    struct mysql_leader *m = ld->m;
    struct table_load *t = ld->t;
    if (ld->over && !t->over_logged)
        log_warn(
                "leader: backend %s: %s: more than %zu live rows; using the %zu written most recently (%s)",
                m->backend, t->kind->table, t->max, t->max, t->kind->cap_key);
    t->over_logged = ld->over;
    strmap_deinit(&t->bad);
    t->bad = ld->seen;
    if (m->job_term == m->term)
        t->loaded_term = m->term;
    leader_mysql_maybe_serve(m);
    leader_mysql_state_kick(m);
}

struct cur_ratio {
    bool filled;
    struct strmap map; /* key -> double * */
};

static void collect_ratio(const char *key, uint64_t expire_at_ms, double ratio, void *arg)
{
    (void)expire_at_ms;
    struct cur_ratio *c = arg;
    double *r = xmalloc(sizeof(*r));
    *r = ratio;
    free(strmap_put(&c->map, key, r));
}

/* The ratio @key has here now, or 1. The map of current ratios is made on
 * the first call only: a Go node's sentinel is rare, and the map would cost
 * one allocation per throttled app on every reload. */
static double cur_ratio_of(struct mysql_leader *m, struct cur_ratio *c, const char *key)
{
    if (!c->filled) {
        throttler_each_app(m->t, collect_ratio, c);
        c->filled = true;
    }
    const double *have = strmap_get(&c->map, key);
    return have ? *have : 1.0;
}

static void take_apps(struct load *ld)
{
    struct mysql_leader *m = ld->m;
    struct cur_ratio cur = {0};
    strmap_init(&cur.map);
    struct throttler_app *v = xcalloc(ld->res->nrows ? ld->res->nrows : 1, sizeof(*v));
    size_t n = 0;
    struct backend_app a;
    while (load_next(ld, &a)) {
        /* A Go node's "no ratio given": keep ours, or 1, as it would. */
        double ratio = a.ratio < 0 ? cur_ratio_of(m, &cur, a.key) : a.ratio;
        v[n++] = (struct throttler_app){
                .key = a.key, .expire_at_ms = a.expire_at_ms, .ratio = ratio};
    }
    throttler_replace_apps(m->t, v, n);
    free(v);
    strmap_deinit_values(&cur.map, free);
}

static void take_hosts(struct load *ld)
{
    struct throttler_host *v = xcalloc(ld->res->nrows ? ld->res->nrows : 1, sizeof(*v));
    size_t n = 0;
    struct backend_host h;
    while (load_next(ld, &h))
        v[n++] = (struct throttler_host){.host = h.host, .expire_at_ms = h.expire_at_ms};
    throttler_replace_skipped_hosts(ld->m->t, v, n);
    free(v);
}

/* A rule row: its name and expiry, with the rule parsed beside. */
struct rule_row {
    struct backend_rule r;
    struct app_rule rule;
};

static enum backend_row parse_rule(const char *const *cells, uint64_t now_ms, void *out,
                                   struct err *err)
{
    struct rule_row *row = out;
    return backend_parse_rule(cells, now_ms, &row->r, &row->rule, err);
}

static void take_rules(struct load *ld)
{
    size_t cap = ld->res->nrows ? ld->res->nrows : 1;
    struct throttler_rule *v = xcalloc(cap, sizeof(*v));
    struct app_rule *rules = xcalloc(cap, sizeof(*rules));
    size_t n = 0;
    struct rule_row row;
    while (load_next(ld, &row)) {
        rules[n] = row.rule;
        v[n] = (struct throttler_rule){
                .key = row.r.key, .expire_at_ms = row.r.expire_at_ms, .rule = &rules[n]};
        n++;
    }
    throttler_replace_rules(ld->m->t, v, n);
    free(v);
    free(rules);
}

/* The tables a leader loads: {table, cap_key, ncols, sql, parse, take}. */
static const struct load_kind apps_kind = {"throttled_apps",
                                           "MaxThrottledApps",
                                           BACKEND_APP_COLUMNS,
                                           backend_sql_load_apps,
                                           parse_app,
                                           take_apps,
                                           0};
static const struct load_kind hosts_kind = {"skipped_hosts",
                                            "MaxSkippedHosts",
                                            BACKEND_HOST_COLUMNS,
                                            backend_sql_load_hosts,
                                            parse_host,
                                            take_hosts,
                                            0};

static const struct load_kind rules_kind = {
        BACKEND_RULES_TABLE, "MaxAppRules", BACKEND_RULE_COLUMNS,      backend_sql_load_rules,
        parse_rule,          take_rules,    BACKEND_RULE_ROW_BYTES_MAX};

static void on_load(struct myconn *c, enum myconn_status status, const struct myresult *res,
                    const char *errmsg, void *arg)
{
    struct load ld;
    if (!load_begin(&ld, arg, c, status, res, errmsg))
        return;
    ld.t->kind->take(&ld);
    load_end(&ld);
}

/* Sends the load of @t, bounded in rows, bytes and time by its cap. */
static void load_send(struct mysql_leader *m, struct table_load *t)
{
    t->want = false;
    struct myquery_limits lim = {.max_rows = t->max + 1};
    lim.max_bytes = lim.max_rows *
                    (t->kind->row_bytes_max ? t->kind->row_bytes_max : BACKEND_LOAD_ROW_BYTES_MAX);
    lim.timeout_ms = LOAD_TIMEOUT_MS + (uint32_t)(lim.max_rows / LOAD_ROWS_PER_TIMEOUT_MS);
    char *sql = t->kind->sql(lim.max_rows);
    myconn_query_limited(m->state_conn, sql, &lim, on_load, t);
    free(sql);
}

/* A failed job is not retried here (that would spin on a dead backend); its
 * timer or the next election round asks again. */
void leader_mysql_state_kick(struct mysql_leader *m)
{
    if (m->stopping || myconn_is_busy(m->state_conn) || !m->schema_ok)
        return;
    m->job_gen = m->ops_gen;
    m->job_term = m->term;
    bool no_rules = m->rules.want && !m->rules_present;
    if (no_rules) {
        /* No table, no rules: nothing to load or wait for before serving. */
        m->rules.want = false;
        m->rules.loaded_term = m->term;
    }
    if (m->apps.want) {
        load_send(m, &m->apps);
    } else if (m->hosts.want) {
        load_send(m, &m->hosts);
    } else if (m->rules.want) {
        load_send(m, &m->rules);
    } else if (m->want_health) {
        m->want_health = false;
        leader_mysql_send(m->state_conn, backend_sql_register_health(&m->ids), on_health, m);
    }
    if (no_rules)
        leader_mysql_maybe_serve(m);
}

static void on_health_timer(uv_timer_t *h)
{
    struct mysql_leader *m = h->data;
    m->want_health = true;
    leader_mysql_state_kick(m);
}

static void on_reload_timer(uv_timer_t *h)
{
    struct mysql_leader *m = h->data;
    /* Followers too: the original reloads apps on every node; we add the
     * skipped hosts, so an operator's call to any node reaches the leader. */
    m->apps.want = true;
    m->hosts.want = true;
    m->rules.want = true;
    leader_mysql_state_kick(m);
}

/* ---- ShareDomain ---- */

static void on_share_polled(const struct share_health *v, size_t n, void *arg)
{
    struct mysql_leader *m = arg;
    uint64_t now_ms = clock_wall_ms();
    for (size_t i = 0; i < n; i++)
        throttler_set_share_health(m->t, v[i].metric, v[i].seconds_since_healthy, now_ms);
}

static void on_share_timer(uv_timer_t *h)
{
    struct mysql_leader *m = h->data;
    if (!m->serving || m->share == NULL || m->share_services.len == 0 ||
        share_poll_is_busy(m->share))
        return;
    const char **ids = xcalloc(m->share_services.len, sizeof(*ids));
    for (size_t i = 0; i < m->share_services.len; i++)
        ids[i] = m->share_services.v[i].service_id;
    share_poll_start(m->share, ids, m->share_services.len, on_share_polled, m);
    free(ids);
}

/* ---- setup ---- */

static void table_load_init(struct mysql_leader *m, struct table_load *t,
                            const struct load_kind *kind, int64_t max, size_t default_max)
{
    t->m = m;
    t->kind = kind;
    t->max = max > 0 ? (size_t)max : default_max;
    t->chan.name = kind->table;
    strmap_init(&t->bad);
}

void leader_mysql_state_init(struct mysql_leader *m, const struct config *cfg)
{
    table_load_init(m, &m->apps, &apps_kind, cfg->max_throttled_apps, APP_THROTTLE_DEFAULT_MAX);
    table_load_init(m, &m->hosts, &hosts_kind, cfg->max_skipped_hosts, SKIPPED_HOSTS_DEFAULT_MAX);
    table_load_init(m, &m->rules, &rules_kind, cfg->max_app_rules, APP_RULES_DEFAULT_MAX);
    m->health_chan.name = "health";
    m->share_chan.name = "share-domain services";
}

void leader_mysql_state_start(struct mysql_leader *m)
{
    m->health_timer = loop_timer_start(m->loop, on_health_timer, m, 0, HEALTH_INTERVAL_MS);
    m->reload_timer =
            loop_timer_start(m->loop, on_reload_timer, m, RELOAD_FIRST_MS, RELOAD_INTERVAL_MS);
    m->share_timer =
            loop_timer_start(m->loop, on_share_timer, m, SHARE_INTERVAL_MS, SHARE_INTERVAL_MS);
}

void leader_mysql_state_deinit(struct mysql_leader *m)
{
    loop_timer_close(&m->health_timer);
    loop_timer_close(&m->reload_timer);
    loop_timer_close(&m->share_timer);
    strmap_deinit(&m->apps.bad);
    strmap_deinit(&m->hosts.bad);
    strmap_deinit(&m->rules.bad);
    leader_mysql_svc_clear(&m->domain_services);
}
