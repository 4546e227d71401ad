/* SPDX-License-Identifier: MIT */
/* Publishes aggregated metrics to memcached as the original does: after each
 * aggregation, <MemcachePath>/<metric> = "<epoch ms>:<value %.6f>" with a 1 s
 * expiry, and the key is deleted while the aggregate is an error. libmemcached
 * blocks, so writes run in the libuv thread pool, one batch at a time; values
 * that arrive meanwhile replace older unsent ones (newest wins) and go out
 * with the next batch. Keys are spread over several servers as the original's
 * client does (CRC-32 of the key modulo the server count). Loop thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct err;
struct hostport;
struct loop;
struct memcache_pub;

/* Returns NULL with @err untouched when @cfg has no MemcacheServers
 * (nothing to publish), or NULL with @err set when libmemcached
 * ("libmemcached.so.11", opened here the first time) cannot be loaded or
 * the client not created. An entry memcache_pub_parse_server() refuses is
 * left out with a warning. */
struct memcache_pub *memcache_pub_new(struct loop *loop, const struct config *cfg, struct err *err);
/* Frees now, or once the batch in flight has finished. NULL is fine. */
void memcache_pub_free(struct memcache_pub *m);

/* Records the latest aggregate of @metric ("mysql/<cluster>", or
 * "mysql/<cluster>/<metric>" for one of its Metrics): a value when
 * @has_value and @ok, otherwise the key is to be deleted (once per change).
 * Starts a batch unless one is in flight. */
void memcache_pub_put(struct memcache_pub *m, const char *metric, bool has_value, bool ok,
                      double value, uint64_t now_ms);

/* Formats the stored value: "<now_ms>:<value %.6f>". Returns the length
 * (truncated to @size - 1 like snprintf). Pure. */
int memcache_pub_format(char *buf, size_t size, uint64_t now_ms, double value);
/* Reads one MemcacheServers entry: "host:port", "[v6]:port", "host", "[v6]"
 * or a bare IPv6 literal (core/hostport rules), port 11211 when missing.
 * Credentials (user:password@) are refused. Returns 0 with @out filled, or
 * -EINVAL with *@why naming the problem ("invalid port"). Pure. */
int memcache_pub_parse_server(const char *s, struct hostport *out, const char **why);
/* CRC-32 (IEEE) of @len bytes of @data, the server selection hash. Pure. */
uint32_t memcache_pub_crc32(const char *data, size_t len);
