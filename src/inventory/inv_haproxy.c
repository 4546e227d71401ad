/* SPDX-License-Identifier: MIT */
/* HAProxy host source: the stats CSV parser (pure) and a per-URL fetch cache
 * with a concurrency limit. Loop thread; a URL entry lives as long as the
 * fetcher, and a refresh lives until its last address answered. */
#include "inventory/inv_haproxy.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/err.h"
#include "core/redact.h"
#include "core/strmap.h"
#include "core/xalloc.h"
#include "httpc/httpc.h"
#include "log/log.h"
#include "loop/loop.h"

#define CACHE_MS         1000
#define MAX_CONCURRENT   2
#define FETCH_TIMEOUT_MS 5000
#define MAX_BODY         ((size_t)32 * 1024 * 1024)
#define FIELD_MAX        512

/* ---- CSV ---- */

struct csv {
    const char *p;
    const char *end;
};

/* Reads one field at c->p, RFC 4180 style. When @buf is not NULL the
 * unquoted value is copied there (NUL-terminated; *@truncated says it did
 * not fit). Returns true if more fields follow in the same record. */
static bool csv_field(struct csv *c, char *buf, size_t size, bool *truncated)
{
    size_t o = 0;
    bool quoted = c->p < c->end && *c->p == '"';
    if (quoted)
        c->p++;
    while (c->p < c->end) {
        char ch = *c->p;
        if (quoted) {
            if (ch == '"') {
                if (c->p + 1 < c->end && c->p[1] == '"') {
                    c->p++;
                } else {
                    quoted = false;
                    c->p++;
                    continue;
                }
            }
        } else if (ch == ',' || ch == '\n') {
            break;
        }
        c->p++;
        if (buf == NULL || ch == '\r')
            continue;
        if (o + 1 < size)
            buf[o++] = ch;
        else
            *truncated = true;
    }
    if (buf != NULL)
        buf[o] = '\0';
    if (c->p < c->end && *c->p == ',') {
        c->p++;
        return true;
    }
    if (c->p < c->end)
        c->p++; /* the newline */
    return false;
}

static void csv_skip_record(struct csv *c)
{
    while (csv_field(c, NULL, 0, NULL)) {
    }
}

static const char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

enum hp_state { HP_UP, HP_DOWN, HP_NOLB, HP_NOCHECK, HP_OTHER };

/* "UP", "UP 1/2" (going down), "DOWN", "DOWN 1/2" (going up), "DOWN (agent)",
 * "NOLB", "MAINT", "MAINT (via x/y)", "DRAIN", "no check", ... */
static enum hp_state parse_status(const char *s, bool *transitioning)
{
    *transitioning = false;
    if (strcmp(s, "no check") == 0)
        return HP_NOCHECK;
    size_t w = strcspn(s, " ");
    if (s[w] == ' ') {
        const char *second = s + w + 1;
        size_t w2 = strcspn(second, " ");
        *transitioning = memchr(second, '/', w2) != NULL;
    }
    if (w == 2 && strncmp(s, "UP", 2) == 0)
        return HP_UP;
    if (w == 4 && strncmp(s, "DOWN", 4) == 0)
        return HP_DOWN;
    if (w == 4 && strncmp(s, "NOLB", 4) == 0)
        return HP_NOLB;
    return HP_OTHER;
}

int inv_haproxy_parse(const char *csv, size_t len, const char *pool, uint16_t default_port,
                      struct inv_hosts *out, struct err *err)
{
    struct csv c = {.p = csv, .end = csv + len};
    char field[FIELD_MAX];
    bool trunc = false;

    while (c.p < c.end && (*c.p == '\n' || *c.p == '\r' || *c.p == ' '))
        c.p++;
    if (c.p == c.end)
        return err_set(err, -EINVAL, "empty CSV");

    /* Header: "# pxname,svname,...". Column positions vary across versions. */
    long col_px = -1, col_sv = -1, col_st = -1;
    bool more = true;
    for (long i = 0; more; i++) {
        trunc = false;
        more = csv_field(&c, field, sizeof(field), &trunc);
        char *name = field;
        if (i == 0)
            name += strspn(name, "# ");
        const char *t = trim(name);
        if (strcmp(t, "pxname") == 0 && col_px < 0)
            col_px = i;
        else if (strcmp(t, "svname") == 0 && col_sv < 0)
            col_sv = i;
        else if (strcmp(t, "status") == 0 && col_st < 0)
            col_st = i;
    }
    if (col_px < 0 || col_sv < 0 || col_st < 0)
        return err_set(err, -EINVAL, "CSV header lacks the %s column",
                       col_px < 0   ? "pxname"
                       : col_sv < 0 ? "svname"
                                    : "status");
    long last = col_px > col_sv ? col_px : col_sv;
    last = last > col_st ? last : col_st;

    size_t rows = 0, servers = 0, up = 0, transitioning = 0, up_transitioning = 0;
    bool pool_found = false;
    char px[FIELD_MAX], sv[FIELD_MAX], st[64];
    while (c.p < c.end) {
        if (*c.p == '\n' || (*c.p == '\r' && c.p + 1 < c.end && c.p[1] == '\n')) {
            c.p += *c.p == '\n' ? 1 : 2;
            continue;
        }
        rows++;
        px[0] = sv[0] = st[0] = '\0';
        trunc = false;
        long i = 0;
        more = true;
        for (; more && i <= last; i++) {
            char *dst = i == col_px ? px : i == col_sv ? sv : i == col_st ? st : NULL;
            size_t dsize = dst == st ? sizeof(st) : dst != NULL ? sizeof(px) : 0;
            more = csv_field(&c, dst, dsize, &trunc);
        }
        if (more)
            csv_skip_record(&c);
        /* Short or oversized rows cannot be judged: left out. */
        if (i <= last || trunc || strcmp(px, pool) != 0)
            continue;
        pool_found = true;
        if (strcmp(sv, "BACKEND") == 0 || strcmp(sv, "FRONTEND") == 0)
            continue;
        servers++;
        bool trans;
        enum hp_state s = parse_status(st, &trans);
        transitioning += trans;
        if (s == HP_UP) {
            up++;
            up_transitioning += trans;
        }
        bool probe = (s == HP_UP && !trans) || s == HP_DOWN || s == HP_NOCHECK;
        if (!probe)
            continue;
        char *host;
        uint16_t port;
        if (inv_split_host_port(sv, default_port, &host, &port) < 0)
            continue;
        inv_hosts_add(out, host, port);
        free(host);
    }
    if (rows == 0)
        return err_set(err, -EINVAL, "CSV has a header but no rows");
    if (!pool_found)
        return err_set(err, -EINVAL, "pool %s not found", pool);
    if (servers > 0 && transitioning == servers)
        return err_set(err, -EINVAL,
                       "pool %s: all %zu servers are transitioning, HAProxy is likely reloading",
                       pool, servers);
    if (up > 0 && up_transitioning == up)
        return err_set(err, -EINVAL,
                       "pool %s: all %zu UP servers are transitioning, HAProxy is likely reloading",
                       pool, up);
    return 0;
}

char *inv_haproxy_csv_url(const char *base)
{
    const char *auth = strstr(base, "://");
    auth = auth ? auth + 3 : base;
    bool has_path = strchr(auth, '/') != NULL;
    return xasprintf("%s%s;csv;norefresh", base, has_path ? "" : "/");
}

/* ---- fetcher ---- */

struct hp_refresh;

struct hp_waiter {
    struct hp_waiter *next;
    struct hp_refresh *r;
    size_t idx; /* address index in the refresh */
};

struct hp_entry {
    struct inv_haproxy *h;
    char *url;
    char *shown; /* url with its credentials masked, for every message */
    char *body;  /* last good body, NULL if none */
    size_t len;
    uint64_t fetched_at_ms;
    bool queued;
    struct httpc_req *req;
    struct hp_waiter *waiters;
    struct hp_entry *next_queued;
};

struct hp_refresh {
    const struct config_cluster *cc;
    inv_source_done_fn *done;
    void *arg;
    size_t pending;
    struct inv_hosts hosts;
    bool failed;
    struct err err;       /* the first fetch error */
    struct err parse_err; /* the first parse error */
};

struct inv_haproxy {
    struct loop *loop;
    struct httpc *http;
    struct strmap entries; /* csv url -> struct hp_entry * */
    struct hp_entry *queue_head;
    struct hp_entry *queue_tail;
    size_t running;
};

struct inv_haproxy *inv_haproxy_new(struct loop *loop, struct httpc *http)
{
    struct inv_haproxy *h = xcalloc(1, sizeof(*h));
    h->loop = loop;
    h->http = http;
    strmap_init(&h->entries);
    return h;
}

static void refresh_free(struct hp_refresh *r)
{
    inv_hosts_deinit(&r->hosts);
    free(r);
}

void inv_haproxy_free(struct inv_haproxy *h)
{
    if (h == NULL)
        return;
    size_t it = 0;
    const char *key;
    void *val;
    /* A refresh may wait on several entries; free it once, at its last waiter. */
    while (strmap_next(&h->entries, &it, &key, &val)) {
        struct hp_entry *e = val;
        httpc_cancel(e->req);
        while (e->waiters != NULL) {
            struct hp_waiter *w = e->waiters;
            e->waiters = w->next;
            if (--w->r->pending == 0)
                refresh_free(w->r);
            free(w);
        }
        free(e->url);
        free(e->shown);
        free(e->body);
        free(e);
    }
    strmap_deinit(&h->entries);
    free(h);
}

static void refresh_finish(struct hp_refresh *r)
{
    const struct config_cluster *cc = r->cc;
    if (!r->failed && r->hosts.len == 0) {
        r->failed = true;
        if (r->parse_err.msg[0] != '\0' && cc->haproxy_addresses.len == 1)
            r->err = r->parse_err;
        else if (r->parse_err.msg[0] != '\0')
            err_set(&r->err, -EINVAL, "haproxy pool %s: no hosts from any address (%s)",
                    cc->haproxy_pool, r->parse_err.msg);
        else
            err_set(&r->err, -EINVAL, "haproxy pool %s: no server to probe", cc->haproxy_pool);
    }
    if (r->failed)
        r->done(r->arg, NULL, &r->err);
    else
        r->done(r->arg, &r->hosts, NULL);
    refresh_free(r);
}

/* Gives @r the answer for address @idx: @body, or @fail. @shown is the
 * address's URL with its credentials masked. */
static void refresh_feed(struct hp_refresh *r, const char *shown, const char *body, size_t len,
                         const struct err *fail)
{
    if (fail != NULL) {
        if (!r->failed)
            r->err = *fail;
        r->failed = true;
    } else if (!r->failed) {
        struct inv_hosts one = {0};
        struct err perr = {0};
        if (inv_haproxy_parse(body, len, r->cc->haproxy_pool, r->cc->port, &one, &perr) == 0) {
            inv_hosts_merge(&r->hosts, &one);
        } else {
            err_prefix(&perr, "haproxy %s", shown);
            log_debug("inventory: %s: %s", r->cc->name, perr.msg);
            if (r->parse_err.msg[0] == '\0')
                r->parse_err = perr;
        }
        inv_hosts_deinit(&one);
    }
    if (--r->pending == 0)
        refresh_finish(r);
}

static void start_queued(struct inv_haproxy *h);

static void on_fetched(const struct httpc_result *res, void *arg)
{
    struct hp_entry *e = arg;
    struct inv_haproxy *h = e->h;
    struct err fail = {0};
    bool ok = false;
    e->req = NULL;
    h->running--;
    if (res->code < 0)
        err_set(&fail, res->code, "haproxy GET %s: %s", e->shown, res->msg);
    else if (res->status < 200 || res->status > 299)
        err_set(&fail, -EIO, "haproxy GET %s: HTTP status %ld", e->shown, res->status);
    else if (res->len == 0)
        err_set(&fail, -EIO, "haproxy GET %s: empty body", e->shown);
    else
        ok = true;
    free(e->body);
    e->body = NULL;
    e->len = 0;
    if (ok) {
        e->body = xmalloc(res->len + 1);
        memcpy(e->body, res->body, res->len);
        e->body[res->len] = '\0';
        e->len = res->len;
        e->fetched_at_ms = loop_now_ms(h->loop);
    }
    struct hp_waiter *w = e->waiters;
    e->waiters = NULL;
    while (w != NULL) {
        struct hp_waiter *next = w->next;
        refresh_feed(w->r, e->shown, e->body, e->len, ok ? NULL : &fail);
        free(w);
        w = next;
    }
    start_queued(h);
}

static void start_queued(struct inv_haproxy *h)
{
    while (h->running < MAX_CONCURRENT && h->queue_head != NULL) {
        struct hp_entry *e = h->queue_head;
        h->queue_head = e->next_queued;
        if (h->queue_head == NULL)
            h->queue_tail = NULL;
        e->next_queued = NULL;
        e->queued = false;
        struct err err = {0};
        e->req = httpc_get(h->http, e->url, FETCH_TIMEOUT_MS, MAX_BODY, on_fetched, e, &err);
        if (e->req != NULL) {
            h->running++;
            continue;
        }
        struct hp_waiter *w = e->waiters;
        e->waiters = NULL;
        while (w != NULL) {
            struct hp_waiter *next = w->next;
            refresh_feed(w->r, e->shown, NULL, 0, &err);
            free(w);
            w = next;
        }
    }
}

void inv_haproxy_refresh(struct inv_haproxy *h, const struct config_cluster *cc, uint64_t now_ms,
                         inv_source_done_fn *done, void *arg)
{
    struct hp_refresh *r = xcalloc(1, sizeof(*r));
    r->cc = cc;
    r->done = done;
    r->arg = arg;
    /* One extra count keeps @r alive while addresses are handed out. */
    r->pending = cc->haproxy_addresses.len + 1;
    for (size_t i = 0; i < cc->haproxy_addresses.len; i++) {
        char *url = inv_haproxy_csv_url(cc->haproxy_addresses.v[i]);
        struct hp_entry *e = strmap_get(&h->entries, url);
        if (e == NULL) {
            e = xcalloc(1, sizeof(*e));
            e->h = h;
            e->url = xstrdup(url);
            e->shown = redact_text_dup(url);
            strmap_put(&h->entries, url, e);
        }
        free(url);
        bool fresh = e->body != NULL && now_ms >= e->fetched_at_ms &&
                     now_ms - e->fetched_at_ms < CACHE_MS;
        if (fresh && e->req == NULL && !e->queued) {
            refresh_feed(r, e->shown, e->body, e->len, NULL);
            continue;
        }
        struct hp_waiter *w = xcalloc(1, sizeof(*w));
        w->r = r;
        w->idx = i;
        w->next = e->waiters;
        e->waiters = w;
        if (e->req == NULL && !e->queued) {
            e->queued = true;
            if (h->queue_tail != NULL)
                h->queue_tail->next_queued = e;
            else
                h->queue_head = e;
            h->queue_tail = e;
        }
    }
    start_queued(h);
    if (--r->pending == 0)
        refresh_finish(r);
}
