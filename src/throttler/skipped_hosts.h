/* SPDX-License-Identifier: MIT */
/* Hosts an operator asked not to probe (docs/semantics.md#skipped-hosts): host -> expiry. A skip
 * matches the host on every port. Loop thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/strmap.h"

#define SKIPPED_HOST_NAME_MAX        128
#define SKIPPED_HOST_DEFAULT_TTL_MIN 60

struct skipped_hosts {
    struct strmap map; /* host -> uint64_t * expiry ms */
};

void skipped_hosts_init(struct skipped_hosts *s);
void skipped_hosts_deinit(struct skipped_hosts *s);
/* Skips @host for @ttl_min minutes (no TTL or 0: 60). Re-skipping updates the
 * expiry. -EINVAL with @err for an empty/over-long host or negative TTL. On
 * success *@expire_at_ms (may be NULL) gets the expiry. */
int skipped_hosts_add(struct skipped_hosts *s, const char *host, bool has_ttl, int64_t ttl_min,
                      uint64_t now_ms, uint64_t *expire_at_ms, struct err *err);
/* Stores @host with an absolute expiry (backend load). */
void skipped_hosts_put(struct skipped_hosts *s, const char *host, uint64_t expire_at_ms);
void skipped_hosts_remove(struct skipped_hosts *s, const char *host);
size_t skipped_hosts_sweep(struct skipped_hosts *s, uint64_t now_ms);
/* True if @host (a bare host name, no port) is skipped at @now_ms. */
bool skipped_hosts_is_skipped(const struct skipped_hosts *s, const char *host, uint64_t now_ms);
size_t skipped_hosts_count(const struct skipped_hosts *s);
