/* SPDX-License-Identifier: MIT */
/* Cluster aggregation (docs/semantics.md#aggregation steps 1-6): turns the
 * hosts' last probe results of one metric into one value, the worst host
 * after the operator's allowances, or one error, and remembers which host
 * that was. Pure: no clock, no I/O, nothing kept between calls. Any thread. */
#include "throttler/aggregate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/xalloc.h"

/* The texts of the original's two cluster-level errors, kept word for word
 * because they reach clients in 500 bodies and in /aggregated-metrics. */
#define AGG_MSG_NOT_COLLECTED "Metric not collected yet"
#define AGG_MSG_NO_HOSTS      "No hosts found"

/* IgnoreHostsPercent is kept in millionths of a percent: 100 % is 1e8. */
#define PERCENT_SCALE   1000000.0
#define HUNDRED_PERCENT 100000000ull

static void set_error(struct agg_result *out, const char *msg, size_t host)
{
    out->ok = false;
    out->value = 0;
    snprintf(out->msg, sizeof(out->msg), "%s", msg);
    out->host = host;
}

/* A host's value and its place in the host list. */
struct agg_value {
    double v;
    size_t host;
};

/* Ascending order, with NaN before every number, as Go's sort.Float64s has
 * it, so a NaN value is never taken for the worst host while a number is
 * left. Equal values keep the host order, so of hosts with the same value
 * the one listed last is left out first. */
static int cmp_value(const void *a, const void *b)
{
    const struct agg_value *x = a;
    const struct agg_value *y = b;
    int c;
    if (isnan(x->v))
        c = isnan(y->v) ? 0 : -1;
    else if (isnan(y->v))
        c = 1;
    else
        c = (x->v > y->v) - (x->v < y->v);
    if (c != 0)
        return c;
    return (x->host > y->host) - (x->host < y->host);
}

static bool same_value(double a, double b)
{
    return a == b || (isnan(a) && isnan(b));
}

int64_t aggregate_allowance(int64_t count, double percent, size_t nhosts)
{
    int64_t tokens = count > 0 ? count : 0;
    if (!(percent > 0))
        return tokens;
    if (percent > 100)
        percent = 100;
    /* Rounded half up by hand (the value is positive): llround() was the
     * daemon's one call into libm, whose loading alone costs 300 KB of
     * resident pages. */
    double scaled = percent * PERCENT_SCALE;
    uint64_t millionths = (uint64_t)scaled;
    if (scaled - (double)millionths >= 0.5)
        millionths++;
    int64_t share = (int64_t)((uint64_t)nhosts * millionths / HUNDRED_PERCENT);
    return share > tokens ? share : tokens;
}

void aggregate_hosts(const struct agg_host *hosts, size_t n, const struct agg_params *p,
                     struct agg_result *out)
{
    struct agg_value *values = NULL;
    size_t nvalues = 0;
    size_t counted = 0;

    /* The original walks its hosts in Go map order and returns "not collected
     * yet" only if it meets such a host before a fatal host error, so with
     * both present its answer is random. Here (docs/semantics.md#aggregation) any host without a
     * result (and not left out by a 404) makes the whole cluster "not
     * collected yet", whatever the other hosts say. */
    for (size_t i = 0; i < n; i++) {
        if (hosts[i].http_404)
            continue;
        if (hosts[i].status == PROBE_NONE_YET) {
            set_error(out, AGG_MSG_NOT_COLLECTED, AGG_NO_HOST);
            return;
        }
        counted++;
    }
    /* The percentage counts the hosts that take part: an HTTP 404 host is
     * out of the cluster for now, not one of the hosts it may ignore. */
    int64_t tokens = aggregate_allowance(p->ignore_hosts_count, p->ignore_hosts_percent, counted);

    values = xmalloc((n ? n : 1) * sizeof(*values));
    for (size_t i = 0; i < n; i++) {
        const struct agg_host *h = &hosts[i];
        if (h->http_404)
            continue;
        if (h->status == PROBE_OK) {
            values[nvalues++] = (struct agg_value){h->value, i};
            continue;
        }
        /* The original recognises a dial error by its "dial tcp" prefix; the
         * probe tells us directly. */
        if (p->ignore_dial_tcp_errors && h->status == PROBE_ERR_DIAL)
            continue;
        /* Error hosts spend tokens in array order. Which host's error wins
         * once the tokens are gone is therefore deterministic here, unlike
         * the original's map order. */
        if (tokens > 0) {
            tokens--;
            continue;
        }
        set_error(out, h->msg != NULL && h->msg[0] != '\0' ? h->msg : "unknown probe error", i);
        goto out;
    }
    if (nvalues == 0) {
        set_error(out, AGG_MSG_NO_HOSTS, AGG_NO_HOST);
        goto out;
    }

    qsort(values, nvalues, sizeof(*values), cmp_value);
    /* Tokens left after the error hosts drop the highest values, but never
     * the last one, and with a threshold only values above it. The original
     * spends a token even when it drops nothing; since the values are sorted,
     * once the highest stays every later token would keep it too, so we stop
     * there instead of spinning through a huge IgnoreHostsCount. */
    while (tokens > 0 && nvalues > 1) {
        double highest = values[nvalues - 1].v;
        if (!(p->ignore_hosts_threshold <= 0 || highest > p->ignore_hosts_threshold))
            break;
        nvalues--;
        tokens--;
    }
    out->ok = true;
    out->value = values[nvalues - 1].v;
    /* The host named is the first listed of those kept with that value:
     * equal values sort in host order, so it is the lowest of them. */
    out->host = values[nvalues - 1].host;
    for (size_t i = nvalues - 1; i-- > 0 && same_value(values[i].v, out->value);)
        out->host = values[i].host;
    out->msg[0] = '\0';
out:
    free(values);
}
