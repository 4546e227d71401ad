/* SPDX-License-Identifier: MIT */
/* Pure aggregation of one cluster's host results into the cluster's value
 * (docs/semantics.md#aggregation): the worst host, after IgnoreDialTcpErrors, IgnoreHostsCount and
 * IgnoreHostsThreshold. No clock, no I/O. Any thread. */
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
    double ignore_hosts_threshold;
    bool ignore_dial_tcp_errors;
};

struct agg_result {
    bool ok;
    double value;
    char msg[256]; /* error text when !ok */
};

/* Aggregates @n hosts into @out. */
void aggregate_hosts(const struct agg_host *hosts, size_t n, const struct agg_params *p,
                     struct agg_result *out);
