/* SPDX-License-Identifier: MIT */
/* HAProxy as a host source: GET <address>/;csv;norefresh, keep the servers
 * of one backend pool whose state says they take (or may soon take) traffic.
 * Fetches are cached 1 s per URL and at most 2 run at once, shared by every
 * cluster. Loop thread, except the pure parser. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "inventory/inv_hosts.h"

struct config_cluster;
struct err;
struct httpc;
struct loop;
struct inv_haproxy;

/* Parses a stats CSV (header line "# pxname,svname,...", columns found by
 * name, RFC 4180 quoting accepted) and appends to @out the servers of backend
 * @pool that are UP and not transitioning, DOWN in any form, or "no check";
 * NOLB, MAINT, DRAIN, transitioning UP and unknown states are left out. A
 * server name of the form "host:port" (or "[v6]:port") gives its own port;
 * any other name is a host probed on @default_port. Errors (0 returned
 * otherwise, -EINVAL with @err set): empty input, a header without pxname,
 * svname or status, no data rows, @pool not found, every server of the pool
 * transitioning, or every UP server transitioning (HAProxy reloading). @out
 * may be partly filled on error. Pure; any thread. */
int inv_haproxy_parse(const char *csv, size_t len, const char *pool, uint16_t default_port,
                      struct inv_hosts *out, struct err *err);

/* The CSV URL for a configured base URL ("http://h:p" or "http://h:p/path",
 * no trailing slash): "http://h:p/;csv;norefresh", "http://h:p/path;csv;norefresh".
 * Returns a new string. Pure. */
char *inv_haproxy_csv_url(const char *base);

/* Creates the shared fetcher; @loop and @http are borrowed. */
struct inv_haproxy *inv_haproxy_new(struct loop *loop, struct httpc *http);
/* Abandons fetches in flight (no callbacks) and frees. NULL is fine. */
void inv_haproxy_free(struct inv_haproxy *h);

/* Reads the hosts of @cc (CONFIG_SOURCE_HAPROXY; borrowed until @done ran)
 * from every address and merges them. A failed fetch of any address (transport
 * error, non-2xx status, empty body) fails the refresh; an address whose CSV
 * is unusable (see inv_haproxy_parse) is left out, and the refresh fails only
 * if no address gave a host. @done is called exactly once, possibly before
 * this returns. Loop thread. */
void inv_haproxy_refresh(struct inv_haproxy *h, const struct config_cluster *cc, uint64_t now_ms,
                         inv_source_done_fn *done, void *arg);
