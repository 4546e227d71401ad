/* SPDX-License-Identifier: MIT */
/* A growable list of host:port pairs that inventory sources fill, without
 * duplicates. Plain value code, no I/O. Any thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config_hostport;

struct inv_hosts {
    struct config_hostport *v; /* each host owned by the list */
    size_t len;
    size_t cap;
};

/* Appends a copy of @host (IPv6 without brackets) and @port unless the pair is
 * already listed. Returns true if it was added. */
bool inv_hosts_add(struct inv_hosts *l, const char *host, uint16_t port);
/* Appends every entry of @src not yet in @l. */
void inv_hosts_merge(struct inv_hosts *l, const struct inv_hosts *src);
/* Empties the list and frees its memory; the list can be reused. */
void inv_hosts_deinit(struct inv_hosts *l);

/* Splits "host:port", "[v6]:port", "host" or "v6" (no port) into a new host
 * string and a port; @default_port is used when there is none. The rules are
 * core/hostport's. Returns 0, or -EINVAL when hostport_parse() refuses @s or
 * there is no port at all. *@host is set only on success and belongs to the
 * caller. */
int inv_split_host_port(const char *s, uint16_t default_port, char **host, uint16_t *port);

struct err;

/* How an inventory source reports one refresh: @hosts on success (borrowed,
 * valid during the call), or @err set and @hosts NULL when the source failed
 * and the cluster must keep its previous hosts. Loop thread. */
typedef void inv_source_done_fn(void *arg, const struct inv_hosts *hosts, const struct err *err);
