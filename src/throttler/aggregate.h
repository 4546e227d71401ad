/* SPDX-License-Identifier: MIT */
/* Pure aggregation of one metric's host results into the cluster's value of
 * it (docs/semantics.md#aggregation): the worst host, after
 * IgnoreDialTcpErrors, IgnoreHostsCount or IgnoreHostsPercent, and
 * IgnoreHostsThreshold; and which host that was. No clock, no I/O. Any
 * thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "probe/probe.h"

struct agg_host {
    enum probe_status status; /* PROBE_NONE_YET: not collected yet */
    double value;
    const char *msg; /* error text for error statuses */
    bool http_404;   /* the host's HTTP check answered 404: left out */
};

struct agg_params {
    int64_t ignore_hosts_count;
    double ignore_hosts_percent; /* 0..100; see aggregate_allowance() */
    double ignore_hosts_threshold;
    bool ignore_dial_tcp_errors;
};

/* agg_result.host when no one host gave the result. */
#define AGG_NO_HOST SIZE_MAX

struct agg_result {
    bool ok;
    double value;
    char msg[256]; /* error text when !ok */
    /* Index of the host whose value is the result, or whose error it is;
     * AGG_NO_HOST for "not collected yet" and "no hosts found". Among equal
     * values, the host listed first. */
    size_t host;
};

/* The hosts a cluster of @nhosts hosts may leave out:
 * max(@count, floor(@nhosts * @percent / 100)), the percentage taken to six
 * decimal places so that the floor is exact (10 % of 10 hosts is 1, never
 * 0.999...). A negative @count or @percent counts as 0. Pure. */
int64_t aggregate_allowance(int64_t count, double percent, size_t nhosts);

/* Aggregates @n hosts into @out. The allowance is aggregate_allowance() of
 * the hosts not left out by an HTTP 404. */
void aggregate_hosts(const struct agg_host *hosts, size_t n, const struct agg_params *p,
                     struct agg_result *out);
