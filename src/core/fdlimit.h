/* SPDX-License-Identifier: MIT */
/* The open-files limit: raising the soft limit to the hard one at start, and
 * the arithmetic that splits descriptors between HTTP connections and what
 * the daemon itself needs (probes, inventory, backend, memcache, raft). The
 * arithmetic is pure; fdlimit_raise() is for the main thread at start. */
#pragma once

#include <stdint.h>

#include "core/err.h"

/* Used when the hard limit is unlimited, or above what the kernel lets a
 * process have (fs.nr_open's default). */
#define FDLIMIT_RAISE_CAP 1048576u

struct fdlimit_nofile {
    uint64_t soft_before; /* RLIMIT_NOFILE soft limit as the process started */
    uint64_t soft;        /* after the raise */
    uint64_t hard;
};

/* Raises the RLIMIT_NOFILE soft limit to the hard limit (at most
 * FDLIMIT_RAISE_CAP) and fills @out. A raise the kernel refuses leaves the
 * limit as it was and is not an error. Returns 0, or a negative errno with
 * @err set when the limit cannot be read. Main thread, before other threads
 * start. */
int fdlimit_raise(struct fdlimit_nofile *out, struct err *err);

/* Descriptors the daemon keeps for itself: @base plus @per_host for each of
 * @hosts probed hosts (saturating). */
uint64_t fdlimit_reserve(uint64_t base, uint64_t per_host, uint64_t hosts);

/* HTTP connections that fit in @nofile descriptors once @reserve are kept
 * aside: nofile - reserve, at most @max_connections, 0 when none fit. */
unsigned fdlimit_http_connections(uint64_t nofile, uint64_t reserve, unsigned max_connections);
