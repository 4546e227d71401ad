/* SPDX-License-Identifier: MIT */
/* Hosts an operator asked not to probe (docs/semantics.md#skipped-hosts): host -> expiry. A skip
 * matches the host on every port. Loop thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/limits.h"
#include "throttler/opset.h"

#define SKIPPED_HOST_NAME_MAX        FRENO_NAME_MAX
#define SKIPPED_HOST_DEFAULT_TTL_MIN 60
/* Default of MaxSkippedHosts: skipped hosts held at once. */
#define SKIPPED_HOSTS_DEFAULT_MAX 100000

struct skipped_hosts {
    struct opset set; /* host -> uint64_t expiry ms */
    size_t max;       /* most entries skipped_hosts_add() creates */
};

/* An empty set with the default limit. */
void skipped_hosts_init(struct skipped_hosts *s);
void skipped_hosts_deinit(struct skipped_hosts *s);
/* Sets the limit on entries (0: the default). Existing entries stay. */
void skipped_hosts_set_max(struct skipped_hosts *s, size_t max);
/* Drops every entry; the limit stays. */
void skipped_hosts_clear(struct skipped_hosts *s);
/* True if @host has an entry, expired or not. */
bool skipped_hosts_has(const struct skipped_hosts *s, const char *host);
/* Whether skipping @host needs no room (it has an entry, maybe expired) or
 * there is room for it and @pending other new entries on their way. Returns
 * 0, or -ENOSPC with @err naming the limit and its config key. */
int skipped_hosts_check_room(const struct skipped_hosts *s, const char *host, size_t pending,
                             struct err *err);
/* Skips @host for @ttl_min minutes (no TTL or 0: 60). Re-skipping updates the
 * expiry. -EINVAL with @err for an empty/over-long host or negative TTL,
 * -ENOSPC for a new host when the limit is reached. On success
 * *@expire_at_ms (may be NULL) gets the expiry. */
int skipped_hosts_add(struct skipped_hosts *s, const char *host, bool has_ttl, int64_t ttl_min,
                      uint64_t now_ms, uint64_t *expire_at_ms, struct err *err);
/* Stores @host with an absolute expiry (backend load, replication): not
 * limited here, the caller bounds what it loads. */
void skipped_hosts_put(struct skipped_hosts *s, const char *host, uint64_t expire_at_ms);
void skipped_hosts_remove(struct skipped_hosts *s, const char *host);
size_t skipped_hosts_sweep(struct skipped_hosts *s, uint64_t now_ms);
/* True if @host (a bare host name, no port) is skipped at @now_ms. */
bool skipped_hosts_is_skipped(const struct skipped_hosts *s, const char *host, uint64_t now_ms);
/* Every entry, expired ones not swept yet included. */
size_t skipped_hosts_count(const struct skipped_hosts *s);
/* Iterates every entry in host order:
 * `for (size_t i = 0; skipped_hosts_next(s, &i, &host, &expire_at_ms);)`.
 * No change to @s during the iteration. */
bool skipped_hosts_next(struct skipped_hosts *s, size_t *i, const char **host,
                        uint64_t *expire_at_ms);
/* Replacing the whole set from a reload, as app_throttle_sync_*(): an
 * expiry within @slack_ms of the stored one counts as the same. Each returns
 * whether it changed anything. */
void skipped_hosts_sync_begin(struct skipped_hosts *s);
bool skipped_hosts_sync_put(struct skipped_hosts *s, const char *host, uint64_t expire_at_ms,
                            uint64_t slack_ms);
bool skipped_hosts_sync_end(struct skipped_hosts *s);
