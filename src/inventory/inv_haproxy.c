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

/* The columns the parser reads, found by name in the header. */
enum hp_col { HP_PXNAME, HP_SVNAME, HP_STATUS, HP_NCOLS };

static const char *const hp_col_name[HP_NCOLS] = {"pxname", "svname", "status"};
/* A longer field cannot be one the parser looks for: its row is left out. */
static const size_t hp_col_size[HP_NCOLS] = {FIELD_MAX, FIELD_MAX, 64};

struct hp_header {
    long col[HP_NCOLS]; /* index of each column in a record */
    long last;          /* the highest of them */
};

/* Reads the header record ("# pxname,svname,..."; positions vary across
 * versions) and finds each column by name, the first one when repeated. */
static int csv_header(struct csv *c, struct hp_header *h, struct err *err)
{
    char field[FIELD_MAX];
    bool more = true;
    for (size_t k = 0; k < HP_NCOLS; k++)
        h->col[k] = -1;
    for (long i = 0; more; i++) {
        bool trunc = false;
        more = csv_field(c, field, sizeof(field), &trunc);
        const char *name = trim(i == 0 ? field + strspn(field, "# ") : field);
        for (size_t k = 0; k < HP_NCOLS; k++) {
            if (h->col[k] < 0 && strcmp(name, hp_col_name[k]) == 0) {
                h->col[k] = i;
                break;
            }
        }
    }
    h->last = -1;
    for (size_t k = 0; k < HP_NCOLS; k++) {
        if (h->col[k] < 0)
            return err_set(err, -EINVAL, "CSV header lacks the %s column", hp_col_name[k]);
        h->last = h->col[k] > h->last ? h->col[k] : h->last;
    }
    return 0;
}

/* Skips an empty line at c->p; returns false if there is none. */
static bool csv_skip_empty_line(struct csv *c)
{
    if (*c->p == '\n') {
        c->p++;
        return true;
    }
    if (*c->p == '\r' && c->p + 1 < c->end && c->p[1] == '\n') {
        c->p += 2;
        return true;
    }
    return false;
}

/* Reads one data record, keeping the fields of @h's columns in @f. Returns
 * false when the record cannot be judged: it is shorter than the last column
 * needed, or a needed field is too long. */
static bool csv_row(struct csv *c, const struct hp_header *h, char f[HP_NCOLS][FIELD_MAX])
{
    bool trunc = false, more = true;
    long i = 0;
    for (size_t k = 0; k < HP_NCOLS; k++)
        f[k][0] = '\0';
    for (; more && i <= h->last; i++) {
        size_t k = 0;
        while (k < HP_NCOLS && h->col[k] != i)
            k++;
        if (k < HP_NCOLS)
            more = csv_field(c, f[k], hp_col_size[k], &trunc);
        else
            more = csv_field(c, NULL, 0, &trunc);
    }
    if (more)
        csv_skip_record(c);
    return i > h->last && !trunc;
}

/* What the rows of the pool showed, to judge the whole answer. */
struct hp_tally {
    size_t rows, servers, up, transitioning, up_transitioning;
    bool pool_found;
};

/* Counts server @sv in state @status, and adds it to @out if it is to be
 * probed. */
static void tally_server(struct hp_tally *t, const char *sv, const char *status,
                         uint16_t default_port, struct inv_hosts *out)
{
    bool trans;
    enum hp_state s = parse_status(status, &trans);
    t->servers++;
    t->transitioning += trans;
    if (s == HP_UP) {
        t->up++;
        t->up_transitioning += trans;
    }
    char *host;
    uint16_t port;
    bool probe = (s == HP_UP && !trans) || s == HP_DOWN || s == HP_NOCHECK;
    if (!probe || inv_split_host_port(sv, default_port, &host, &port) < 0)
        return;
    inv_hosts_add(out, host, port);
    free(host);
}

static int tally_verdict(const struct hp_tally *t, const char *pool, struct err *err)
{
    if (t->rows == 0)
        return err_set(err, -EINVAL, "CSV has a header but no rows");
    if (!t->pool_found)
        return err_set(err, -EINVAL, "pool %s not found", pool);
    if (t->servers > 0 && t->transitioning == t->servers)
        return err_set(err, -EINVAL,
                       "pool %s: all %zu servers are transitioning, HAProxy is likely reloading",
                       pool, t->servers);
    if (t->up > 0 && t->up_transitioning == t->up)
        return err_set(err, -EINVAL,
                       "pool %s: all %zu UP servers are transitioning, HAProxy is likely reloading",
                       pool, t->up);
    return 0;
}

int inv_haproxy_parse(const char *csv, size_t len, const char *pool, uint16_t default_port,
                      struct inv_hosts *out, struct err *err)
{
    struct csv c = {.p = csv, .end = csv + len};
    while (c.p < c.end && (*c.p == '\n' || *c.p == '\r' || *c.p == ' '))
        c.p++;
    if (c.p == c.end)
        return err_set(err, -EINVAL, "empty CSV");
    struct hp_header h;
    if (csv_header(&c, &h, err) < 0)
        return -EINVAL;

    struct hp_tally t = {0};
    char f[HP_NCOLS][FIELD_MAX];
    while (c.p < c.end) {
        if (csv_skip_empty_line(&c))
            continue;
        t.rows++;
        if (!csv_row(&c, &h, f) || strcmp(f[HP_PXNAME], pool) != 0)
            continue;
        t.pool_found = true;
        if (strcmp(f[HP_SVNAME], "BACKEND") != 0 && strcmp(f[HP_SVNAME], "FRONTEND") != 0)
            tally_server(&t, f[HP_SVNAME], f[HP_STATUS], default_port, out);
    }
    return tally_verdict(&t, pool, err);
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
    struct strmap entries;        /* csv url -> struct hp_entry * */
    struct hp_entry *queue;       /* waiting for a fetch slot, oldest first */
    struct hp_entry **queue_tail; /* the next_queued link to append at */
    size_t running;
};

static void refresh_free(struct hp_refresh *r)
{
    inv_hosts_deinit(&r->hosts);
    free(r);
}

/* Abandons @value's fetch and waiters (no callbacks) and frees it. A refresh
 * may wait on several entries: it goes with its last waiter. */
static void entry_free(void *value)
{
    struct hp_entry *e = value;
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

struct inv_haproxy *inv_haproxy_new(struct loop *loop, struct httpc *http)
{
    struct inv_haproxy *h = xcalloc(1, sizeof(*h));
    h->loop = loop;
    h->http = http;
    h->queue_tail = &h->queue;
    strmap_init(&h->entries);
    return h;
}

void inv_haproxy_free(struct inv_haproxy *h)
{
    if (h == NULL)
        return;
    strmap_deinit_values(&h->entries, entry_free);
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

/* Gives @r the answer for one of its addresses: @body, or @fail. @shown is
 * the address's URL with its credentials masked. */
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
}

/* Drops one count of @r; the last one finishes it. */
static void refresh_put(struct hp_refresh *r)
{
    if (--r->pending == 0)
        refresh_finish(r);
}

/* Hands every refresh waiting on @e the answer: @body, or @fail. */
static void entry_answer(struct hp_entry *e, const char *body, size_t len, const struct err *fail)
{
    struct hp_waiter *w = e->waiters;
    e->waiters = NULL;
    while (w != NULL) {
        struct hp_waiter *next = w->next;
        refresh_feed(w->r, e->shown, body, len, fail);
        refresh_put(w->r);
        free(w);
        w = next;
    }
}

static void start_queued(struct inv_haproxy *h);

static void on_fetched(const struct httpc_result *res, void *arg)
{
    struct hp_entry *e = arg;
    struct inv_haproxy *h = e->h;
    struct err fail = {0};
    e->req = NULL;
    h->running--;
    if (res->code < 0)
        err_set(&fail, res->code, "haproxy GET %s: %s", e->shown, res->msg);
    else if (res->status < 200 || res->status > 299)
        err_set(&fail, -EIO, "haproxy GET %s: HTTP status %ld", e->shown, res->status);
    else if (res->len == 0)
        err_set(&fail, -EIO, "haproxy GET %s: empty body", e->shown);
    free(e->body);
    e->body = NULL;
    e->len = 0;
    if (fail.code == 0) {
        e->body = xmalloc(res->len + 1);
        memcpy(e->body, res->body, res->len);
        e->body[res->len] = '\0';
        e->len = res->len;
        e->fetched_at_ms = loop_now_ms(h->loop);
    }
    entry_answer(e, e->body, e->len, fail.code == 0 ? NULL : &fail);
    start_queued(h);
}

static void enqueue(struct inv_haproxy *h, struct hp_entry *e)
{
    e->queued = true;
    *h->queue_tail = e;
    h->queue_tail = &e->next_queued;
}

static struct hp_entry *dequeue(struct inv_haproxy *h)
{
    struct hp_entry *e = h->queue;
    h->queue = e->next_queued;
    if (h->queue == NULL)
        h->queue_tail = &h->queue;
    e->next_queued = NULL;
    e->queued = false;
    return e;
}

static void start_queued(struct inv_haproxy *h)
{
    while (h->running < MAX_CONCURRENT && h->queue != NULL) {
        struct hp_entry *e = dequeue(h);
        struct err err = {0};
        e->req = httpc_get(h->http, e->url, FETCH_TIMEOUT_MS, MAX_BODY, on_fetched, e, &err);
        if (e->req != NULL)
            h->running++;
        else
            entry_answer(e, NULL, 0, &err);
    }
}

void inv_haproxy_refresh(struct inv_haproxy *h, const struct config_cluster *cc, uint64_t now_ms,
                         inv_source_done_fn *done, void *arg)
{
    struct hp_refresh *r = xcalloc(1, sizeof(*r));
    r->cc = cc;
    r->done = done;
    r->arg = arg;
    /* One count per waiter, and the refresh's own while addresses are
     * handed out. */
    r->pending = 1;
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
        w->next = e->waiters;
        e->waiters = w;
        r->pending++;
        if (e->req == NULL && !e->queued)
            enqueue(h, e);
    }
    refresh_put(r);
    start_queued(h);
}
