/* SPDX-License-Identifier: MIT */
/* Cluster aggregation (docs/semantics.md#aggregation steps 1-6): turns the hosts' last probe
 * results into one value, the worst host after the operator's allowances, or
 * one error. Pure: no clock, no I/O, nothing kept between calls. Any thread. */
#include "throttler/aggregate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/xalloc.h"

/* The texts of the original's two cluster-level errors, kept word for word
 * because they reach clients in 500 bodies and in /aggregated-metrics. */
#define AGG_MSG_NOT_COLLECTED "Metric not collected yet"
#define AGG_MSG_NO_HOSTS      "No hosts found"

static void set_error(struct agg_result *out, const char *msg)
{
    out->ok = false;
    out->value = 0;
    snprintf(out->msg, sizeof(out->msg), "%s", msg);
}

/* Ascending order, with NaN before every number, as Go's sort.Float64s has
 * it, so a NaN value is never taken for the worst host while a number is
 * left. */
static int cmp_value(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    if (isnan(x))
        return isnan(y) ? 0 : -1;
    if (isnan(y))
        return 1;
    return (x > y) - (x < y);
}

void aggregate_hosts(const struct agg_host *hosts, size_t n, const struct agg_params *p,
                     struct agg_result *out)
{
    int64_t tokens = p->ignore_hosts_count > 0 ? p->ignore_hosts_count : 0;
    double *values = NULL;
    size_t nvalues = 0;

    /* The original walks its hosts in Go map order and returns "not collected
     * yet" only if it meets such a host before a fatal host error, so with
     * both present its answer is random. Here (docs/semantics.md#aggregation) any host without a
     * result (and not left out by a 404) makes the whole cluster "not
     * collected yet", whatever the other hosts say. */
    for (size_t i = 0; i < n; i++) {
        if (!hosts[i].http_404 && hosts[i].status == PROBE_NONE_YET) {
            set_error(out, AGG_MSG_NOT_COLLECTED);
            return;
        }
    }

    values = xmalloc(n * sizeof(*values));
    for (size_t i = 0; i < n; i++) {
        const struct agg_host *h = &hosts[i];
        if (h->http_404)
            continue;
        if (h->status == PROBE_OK) {
            values[nvalues++] = h->value;
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
        set_error(out, h->msg != NULL && h->msg[0] != '\0' ? h->msg : "unknown probe error");
        goto out;
    }
    if (nvalues == 0) {
        set_error(out, AGG_MSG_NO_HOSTS);
        goto out;
    }

    qsort(values, nvalues, sizeof(*values), cmp_value);
    /* Tokens left after the error hosts drop the highest values, but never
     * the last one, and with a threshold only values above it. The original
     * spends a token even when it drops nothing; since the values are sorted,
     * once the highest stays every later token would keep it too, so we stop
     * there instead of spinning through a huge IgnoreHostsCount. */
    while (tokens > 0 && nvalues > 1) {
        double highest = values[nvalues - 1];
        if (!(p->ignore_hosts_threshold <= 0 || highest > p->ignore_hosts_threshold))
            break;
        nvalues--;
        tokens--;
    }
    out->ok = true;
    out->value = values[nvalues - 1];
    out->msg[0] = '\0';
out:
    free(values);
}
