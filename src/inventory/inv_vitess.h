/* SPDX-License-Identifier: MIT */
/* Vitess as a host source: GET <API>[/api]/keyspace/<ks>/tablets/<shard>
 * [?cells=...] from vtctld and probe the serveable REPLICA tablets of the
 * configured cells on mysql_hostname:mysql_port. Loop thread, except the
 * pure functions. */
#pragma once

#include <stddef.h>

#include "inventory/inv_hosts.h"

struct config_cluster;
struct config_strv;
struct err;
struct httpc;
struct inv_vitess;

/* Parses vtctld's tablet list (a JSON array of tablet objects: alias{cell,
 * uid}, hostname, port_map, keyspace, shard, type, mysql_hostname,
 * mysql_port, optional stats{last_error, realtime, ...}) and appends to @out
 * each tablet that is a REPLICA (type 2, or the name "REPLICA"), in one of
 * @cells (blank entries ignored; none means every cell), serveable (no stats,
 * or stats with an empty last_error and a realtime object) and has a host and
 * a port in 1..65535. Returns 0, or -EINVAL with @err set when the text is
 * not a JSON array. Pure; any thread. */
int inv_vitess_parse(const char *json, size_t len, const struct config_strv *cells,
                     struct inv_hosts *out, struct err *err);

/* The tablets URL for @cc (CONFIG_SOURCE_VITESS), as the original builds it:
 * API without trailing slashes, "/api" appended unless already there, then
 * "/keyspace/<ks>/tablets/<shard>" and "?cells=a%2Cb" when cells are set.
 * Returns a new string. Pure. */
char *inv_vitess_url(const struct config_cluster *cc);

struct inv_vitess *inv_vitess_new(struct httpc *http);
/* Abandons requests in flight (no callbacks) and frees. NULL is fine. */
void inv_vitess_free(struct inv_vitess *v);
/* Fetches and parses the tablets of @cc (borrowed until @done ran), with
 * VitessSettings.TimeoutSecs (default 5 s). A transport error, a non-200
 * status or a body that is not a tablet array fails the refresh; an empty
 * list is a success. @done is called exactly once, possibly before this
 * returns. Loop thread. */
void inv_vitess_refresh(struct inv_vitess *v, const struct config_cluster *cc,
                        inv_source_done_fn *done, void *arg);
