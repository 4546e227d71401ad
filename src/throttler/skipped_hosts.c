/* SPDX-License-Identifier: MIT */
/* Hosts an operator asked not to probe (docs/semantics.md#skipped-hosts). Loop thread only; time is
 * passed in. A skip always has an expiry: an entry whose expiry is <= now
 * counts as recovered and the next sweep drops it. */
#include "throttler/skipped_hosts.h"

#include <assert.h>

void skipped_hosts_init(struct skipped_hosts *s)
{
    opset_init(&s->set, sizeof(uint64_t));
    s->max = SKIPPED_HOSTS_DEFAULT_MAX;
}

void skipped_hosts_deinit(struct skipped_hosts *s)
{
    opset_deinit(&s->set);
}

void skipped_hosts_set_max(struct skipped_hosts *s, size_t max)
{
    s->max = max ? max : SKIPPED_HOSTS_DEFAULT_MAX;
}

void skipped_hosts_clear(struct skipped_hosts *s)
{
    opset_clear(&s->set);
}

bool skipped_hosts_has(const struct skipped_hosts *s, const char *host)
{
    return opset_get(&s->set, host) != NULL;
}

int skipped_hosts_check_room(const struct skipped_hosts *s, const char *host, size_t pending,
                             struct err *err)
{
    return opset_check_room(&s->set, host, opset_len(&s->set), s->max, pending, "skip-host",
                            "hosts are skipped (MaxSkippedHosts); recover some", err);
}

int skipped_hosts_add(struct skipped_hosts *s, const char *host, bool has_ttl, int64_t ttl_min,
                      uint64_t now_ms, uint64_t *expire_at_ms, struct err *err)
{
    assert(host != NULL);
    /* The original recovers the host on a negative TTL (its expiry lands in
     * the past); docs/semantics.md#skipped-hosts wants a bad TTL to change nothing. */
    if (!has_ttl || ttl_min == 0)
        ttl_min = SKIPPED_HOST_DEFAULT_TTL_MIN;
    int rc = opset_check_name("skip-host", "host", host, SKIPPED_HOST_NAME_MAX, err);
    if (rc == 0)
        rc = opset_check_ttl("skip-host", ttl_min, now_ms, err);
    if (rc == 0)
        rc = skipped_hosts_check_room(s, host, 0, err);
    if (rc < 0)
        return rc;
    uint64_t at_ms = now_ms + (uint64_t)ttl_min * OPSET_MIN_MS;
    skipped_hosts_put(s, host, at_ms);
    if (expire_at_ms != NULL)
        *expire_at_ms = at_ms;
    return 0;
}

void skipped_hosts_put(struct skipped_hosts *s, const char *host, uint64_t expire_at_ms)
{
    uint64_t *at = opset_put(&s->set, host, NULL);
    *at = expire_at_ms;
}

void skipped_hosts_remove(struct skipped_hosts *s, const char *host)
{
    opset_del(&s->set, host);
}

size_t skipped_hosts_sweep(struct skipped_hosts *s, uint64_t now_ms)
{
    return opset_sweep_expired(&s->set, now_ms, false);
}

bool skipped_hosts_is_skipped(const struct skipped_hosts *s, const char *host, uint64_t now_ms)
{
    const uint64_t *at = opset_get(&s->set, host);
    return at != NULL && *at > now_ms;
}

size_t skipped_hosts_count(const struct skipped_hosts *s)
{
    return opset_len(&s->set);
}

bool skipped_hosts_next(struct skipped_hosts *s, size_t *i, const char **host,
                        uint64_t *expire_at_ms)
{
    void *v;
    if (!opset_next(&s->set, i, host, &v))
        return false;
    *expire_at_ms = *(const uint64_t *)v;
    return true;
}

void skipped_hosts_sync_begin(struct skipped_hosts *s)
{
    opset_sync_begin(&s->set);
}

bool skipped_hosts_sync_put(struct skipped_hosts *s, const char *host, uint64_t expire_at_ms,
                            uint64_t slack_ms)
{
    const uint64_t *at = opset_get(&s->set, host);
    if (at != NULL && opset_sync_keep(&s->set, host, *at, expire_at_ms, slack_ms))
        return false;
    skipped_hosts_put(s, host, expire_at_ms);
    return true;
}

bool skipped_hosts_sync_end(struct skipped_hosts *s)
{
    return opset_remove_untouched(&s->set, NULL) > 0;
}
