/* SPDX-License-Identifier: MIT */
/* Metric history: per cluster, one ring of HISTORY_POINTS seconds for each of
 * its metrics, sharing the cluster's time line (slot = second mod
 * HISTORY_POINTS). The loop writes once a second, each point already as the
 * JSON text it is served as: formatted once when recorded instead of on
 * every request (a request for every point of 100 clusters of 3 metrics
 * formatted 270,000 numbers, 65 ms of an HTTP thread; copying the texts
 * takes a few). Readers copy one cluster at a time under history_lock and
 * format outside it, so the loop never waits longer than one cluster's copy
 * (about 105 KB at most). */
#include "snapshot/history.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jsonfmt.h"
#include "core/limits.h"
#include "core/strbuf.h"
#include "core/xalloc.h"

/* A point as served: "%.6g" of the value, NUL-padded; empty for null. */
typedef char hist_point[HISTORY_POINT_BYTES];

struct hist_series {
    char *metric;
    char *name;
    double threshold;
    hist_point v[HISTORY_POINTS];
};

struct hist_cluster {
    char *name;
    uint64_t last_s; /* the newest second recorded */
    size_t count;    /* seconds held, ending at last_s; at most HISTORY_POINTS */
    bool seen;       /* recorded since the last sweep */
    struct hist_series *series[FRENO_METRICS_MAX];
    size_t nseries;
};

struct history {
    /* history_lock guards v, len and everything they point to: the loop
     * writes, HTTP threads copy. The third lock of the daemon (besides the
     * snapshot's and the command queue's), kept off the check path. */
    pthread_mutex_t lock;
    struct hist_cluster *v; /* sorted by name; moved as values, never pointed to */
    size_t len, size;
};

struct history *history_new(void)
{
    struct history *h = xcalloc(1, sizeof(*h));
    pthread_mutex_init(&h->lock, NULL);
    return h;
}

static void series_free(struct hist_series *s)
{
    if (s == NULL)
        return;
    free(s->metric);
    free(s->name);
    free(s);
}

static void cluster_deinit(struct hist_cluster *c)
{
    for (size_t i = 0; i < c->nseries; i++)
        series_free(c->series[i]);
    free(c->name);
}

void history_free(struct history *h)
{
    if (h == NULL)
        return;
    for (size_t i = 0; i < h->len; i++)
        cluster_deinit(&h->v[i]);
    free(h->v);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

/* The index of @name, or where it would go (*@found false). Under the lock. */
static size_t cluster_index(const struct history *h, const char *name, bool *found)
{
    size_t lo = 0, hi = h->len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(h->v[mid].name, name);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static struct hist_series *series_new(const struct history_sample *s)
{
    struct hist_series *r = xmalloc(sizeof(*r));
    r->metric = xstrdup(s->metric);
    r->name = xstrdup(s->name);
    r->threshold = s->threshold;
    memset(r->v, 0, sizeof(r->v));
    return r;
}

/* Makes @c's series those of @v, in @v's order: kept by metric name, new
 * ones empty, the others dropped. */
static void cluster_set_series(struct hist_cluster *c, const struct history_sample *v, size_t n)
{
    struct hist_series *next[FRENO_METRICS_MAX] = {0};
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < c->nseries; j++) {
            if (c->series[j] != NULL && strcmp(c->series[j]->metric, v[i].metric) == 0) {
                next[i] = c->series[j];
                c->series[j] = NULL;
                break;
            }
        }
        if (next[i] == NULL)
            next[i] = series_new(&v[i]);
    }
    for (size_t j = 0; j < c->nseries; j++)
        series_free(c->series[j]);
    memcpy(c->series, next, sizeof(next));
    c->nseries = n;
}

static bool series_match(const struct hist_cluster *c, const struct history_sample *v, size_t n)
{
    if (c->nseries != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(c->series[i]->metric, v[i].metric) != 0)
            return false;
    return true;
}

static void point_set_null(hist_point p)
{
    p[0] = '\0';
}

/* Six significant digits draw any chart and keep a point within 13 bytes
 * (a lag computed from timestamps has 17): "-1.23457e-308" is the longest. */
static void point_set(hist_point p, bool has_value, double v)
{
    if (!has_value || !isfinite(v)) {
        point_set_null(p);
        return;
    }
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%.6g", v);
    if (n <= 0 || (size_t)n > HISTORY_POINT_BYTES) {
        point_set_null(p); /* cannot happen with %.6g of a finite double */
        return;
    }
    memset(p, 0, HISTORY_POINT_BYTES);
    memcpy(p, buf, (size_t)n);
}

/* Moves @c's time line to @t_s: nulls for skipped seconds. */
static void cluster_advance(struct hist_cluster *c, uint64_t t_s)
{
    if (c->count > 0 && t_s == c->last_s)
        return;
    if (c->count == 0 || t_s < c->last_s) {
        for (size_t i = 0; i < c->nseries; i++)
            point_set_null(c->series[i]->v[t_s % HISTORY_POINTS]);
        c->last_s = t_s;
        c->count = 1;
        return;
    }
    uint64_t gap = t_s - c->last_s;
    uint64_t fill = gap < HISTORY_POINTS ? gap : HISTORY_POINTS;
    for (uint64_t k = 0; k < fill; k++)
        for (size_t i = 0; i < c->nseries; i++)
            point_set_null(c->series[i]->v[(t_s - k) % HISTORY_POINTS]);
    c->count = c->count + gap < HISTORY_POINTS ? c->count + (size_t)gap : HISTORY_POINTS;
    c->last_s = t_s;
}

void history_record(struct history *h, const char *cluster, const struct history_sample *v,
                    size_t n, uint64_t t_s)
{
    if (n > FRENO_METRICS_MAX)
        n = FRENO_METRICS_MAX;
    pthread_mutex_lock(&h->lock);
    bool found;
    size_t at = cluster_index(h, cluster, &found);
    if (!found) {
        if (h->len == h->size) {
            h->size = h->size ? h->size * 2 : 16;
            h->v = xrealloc(h->v, h->size * sizeof(*h->v));
        }
        memmove(&h->v[at + 1], &h->v[at], (h->len - at) * sizeof(h->v[0]));
        h->v[at] = (struct hist_cluster){.name = xstrdup(cluster)};
        h->len++;
    }
    struct hist_cluster *c = &h->v[at];
    if (!series_match(c, v, n))
        cluster_set_series(c, v, n);
    cluster_advance(c, t_s);
    for (size_t i = 0; i < n; i++) {
        c->series[i]->threshold = v[i].threshold;
        point_set(c->series[i]->v[t_s % HISTORY_POINTS], v[i].has_value, v[i].value);
    }
    c->seen = true;
    pthread_mutex_unlock(&h->lock);
}

void history_sweep(struct history *h)
{
    pthread_mutex_lock(&h->lock);
    size_t k = 0;
    for (size_t i = 0; i < h->len; i++) {
        if (h->v[i].seen) {
            h->v[i].seen = false;
            h->v[k++] = h->v[i];
        } else {
            cluster_deinit(&h->v[i]);
        }
    }
    h->len = k;
    pthread_mutex_unlock(&h->lock);
}

void history_remove_cluster(struct history *h, const char *cluster)
{
    pthread_mutex_lock(&h->lock);
    bool found;
    size_t at = cluster_index(h, cluster, &found);
    if (found) {
        cluster_deinit(&h->v[at]);
        memmove(&h->v[at], &h->v[at + 1], (h->len - at - 1) * sizeof(h->v[0]));
        h->len--;
    }
    pthread_mutex_unlock(&h->lock);
}

size_t history_series_count(struct history *h)
{
    pthread_mutex_lock(&h->lock);
    size_t n = 0;
    for (size_t i = 0; i < h->len; i++)
        n += h->v[i].nseries;
    pthread_mutex_unlock(&h->lock);
    return n;
}

/* ---- rendering ---- */

/* What a reader copies of one cluster, to format without the lock. */
struct hist_copy {
    uint64_t start_s; /* the second of points[0] */
    size_t npoints;
    size_t nseries;
    struct hist_series_copy {
        char *metric, *name;
        double threshold;
        hist_point *points;
    } s[FRENO_METRICS_MAX];
};

/* Copies cluster @name's points after @since_s into @out; false when the
 * cluster is unknown. Takes the lock. */
static bool copy_cluster(struct history *h, const char *name, uint64_t since_s,
                         struct hist_copy *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&h->lock);
    bool found;
    size_t at = cluster_index(h, name, &found);
    if (!found) {
        pthread_mutex_unlock(&h->lock);
        return false;
    }
    const struct hist_cluster *c = &h->v[at];
    uint64_t first = c->count > 0 ? c->last_s - (c->count - 1) : 0;
    if (since_s >= first)
        first = since_s + 1;
    size_t np = c->count > 0 && first <= c->last_s ? (size_t)(c->last_s - first + 1) : 0;
    out->start_s = np > 0 ? first : 0;
    out->npoints = np;
    out->nseries = c->nseries;
    for (size_t i = 0; i < c->nseries; i++) {
        const struct hist_series *s = c->series[i];
        struct hist_series_copy *d = &out->s[i];
        d->metric = xstrdup(s->metric);
        d->name = xstrdup(s->name);
        d->threshold = s->threshold;
        d->points = xmalloc((np ? np : 1) * sizeof(hist_point));
        /* At most two runs: up to the ring's end, then from its start. */
        size_t from = (size_t)(first % HISTORY_POINTS);
        size_t run = np < HISTORY_POINTS - from ? np : HISTORY_POINTS - from;
        memcpy(d->points, &s->v[from], run * sizeof(hist_point));
        memcpy(d->points + run, &s->v[0], (np - run) * sizeof(hist_point));
    }
    pthread_mutex_unlock(&h->lock);
    return true;
}

static void copy_free(struct hist_copy *c)
{
    for (size_t i = 0; i < c->nseries; i++) {
        free(c->s[i].metric);
        free(c->s[i].name);
        free(c->s[i].points);
    }
}

static void add_json_string(struct strbuf *b, const char *s)
{
    size_t size = strlen(s) * 6 + 3;
    char *q = xmalloc(size);
    size_t n = jsonfmt_string(q, size, s);
    strbuf_add(b, q, n);
    free(q);
}

static void add_json_number(struct strbuf *b, double v)
{
    char num[40];
    if (!isfinite(v)) {
        strbuf_add(b, "null", 4);
        return;
    }
    size_t n = jsonfmt_number(num, sizeof(num), v);
    strbuf_add(b, n ? num : "null", n ? n : 4);
}

static void render_cluster(struct strbuf *b, const char *name, const struct hist_copy *c)
{
    add_json_string(b, name);
    strbuf_addf(b, ":{\"Start\":%llu,\"Metrics\":{", (unsigned long long)c->start_s);
    for (size_t i = 0; i < c->nseries; i++) {
        const struct hist_series_copy *s = &c->s[i];
        if (i > 0)
            strbuf_add(b, ",", 1);
        add_json_string(b, s->metric);
        strbuf_adds(b, ":{\"Name\":");
        add_json_string(b, s->name);
        strbuf_adds(b, ",\"Threshold\":");
        add_json_number(b, s->threshold);
        strbuf_adds(b, ",\"Values\":[");
        for (size_t k = 0; k < c->npoints; k++) {
            const char *p = s->points[k];
            size_t n = strnlen(p, HISTORY_POINT_BYTES);
            if (k > 0)
                strbuf_add(b, ",", 1);
            if (n > 0)
                strbuf_add(b, p, n);
            else
                strbuf_add(b, "null", 4);
        }
        strbuf_adds(b, "]}");
    }
    strbuf_adds(b, "}}");
}

/* The names of the clusters held, in order; *@n gets their count. */
static char **cluster_names(struct history *h, size_t *n)
{
    pthread_mutex_lock(&h->lock);
    char **names = xcalloc(h->len ? h->len : 1, sizeof(*names));
    for (size_t i = 0; i < h->len; i++)
        names[i] = xstrdup(h->v[i].name);
    *n = h->len;
    pthread_mutex_unlock(&h->lock);
    return names;
}

char *history_render_json(struct history *h, const char *cluster, uint64_t since_s, size_t *len,
                          bool *found)
{
    struct strbuf b = {0};
    size_t n = 1;
    char **names = NULL;
    if (cluster == NULL)
        names = cluster_names(h, &n);
    strbuf_addf(&b, "{\"IntervalSeconds\":1,\"Points\":%d,\"Clusters\":{", HISTORY_POINTS);
    *found = cluster == NULL;
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        const char *name = cluster != NULL ? cluster : names[i];
        struct hist_copy c;
        /* A cluster dropped since its name was read is left out. */
        if (!copy_cluster(h, name, since_s, &c))
            continue;
        *found = true;
        if (!first)
            strbuf_add(&b, ",", 1);
        first = false;
        render_cluster(&b, name, &c);
        copy_free(&c);
    }
    strbuf_adds(&b, "}}\n");
    for (size_t i = 0; names != NULL && i < n; i++)
        free(names[i]);
    free(names);
    *len = b.len;
    return strbuf_take(&b);
}
