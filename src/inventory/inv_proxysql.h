/* SPDX-License-Identifier: MIT */
/* ProxySQL as a host source: over the MySQL protocol to its admin/stats
 * interface (schema "stats"), read the servers of one hostgroup from
 * stats_mysql_connection_pool. ONLINE and SHUNNED_REPLICATION_LAG servers
 * are probed; any other status puts the server on an ignore list for
 * IgnoreServerTTLSecs, during which it is not probed even when ONLINE. One
 * instance per cluster, owning its connection. Loop thread. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "inventory/inv_hosts.h"

struct config_cluster;
struct err;
struct loop;
struct strmap;
struct inv_proxysql;

/* Applies result rows (srv_host, srv_port, status; @cells row-major, NULL
 * for SQL NULL) to the ignore list @ignore ("host:port" -> heap uint64_t
 * expiry in ms, owned by the map) and appends the servers to probe to @out:
 * ONLINE unless ignored until after @now_ms; SHUNNED_REPLICATION_LAG, which
 * also leaves the ignore list; any other status is (re)ignored until
 * @now_ms + @ttl_ms. Rows with a NULL, an empty host or a bad port are
 * skipped. Pure apart from @ignore; any thread. */
void inv_proxysql_apply_rows(struct strmap *ignore, const char *const *cells, size_t nrows,
                             size_t ncols, uint64_t now_ms, uint64_t ttl_ms, struct inv_hosts *out);
/* Frees the values of @ignore and deinitializes it. */
void inv_proxysql_ignore_deinit(struct strmap *ignore);

/* Creates the source of @cc (CONFIG_SOURCE_PROXYSQL; borrowed, must outlive
 * it). No connection is made until the first refresh. */
struct inv_proxysql *inv_proxysql_new(struct loop *loop, const struct config_cluster *cc);
/* Closes the connection, abandons a refresh in flight (no callback). NULL is
 * fine. */
void inv_proxysql_free(struct inv_proxysql *p);
/* Queries the hostgroup over the kept connection, or connects to the
 * addresses in sorted order until one answers. A query error drops the
 * connection and fails this refresh. @done is called exactly once, usually
 * later from the loop (at once when no address is usable). Not while a
 * refresh is in flight. */
void inv_proxysql_refresh(struct inv_proxysql *p, uint64_t now_ms, inv_source_done_fn *done,
                          void *arg);
