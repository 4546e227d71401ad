/* SPDX-License-Identifier: MIT */
/* Hosts an operator asked not to probe (docs/semantics.md#skipped-hosts). Loop thread only; time is
 * passed in. A skip always has an expiry: an entry whose expiry is <= now
 * counts as recovered and the next sweep drops it. */
#include "throttler/skipped_hosts.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define MIN_MS (60ull * 1000)

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
    if (skipped_hosts_has(s, host))
        return 0;
    size_t used = opset_len(&s->set);
    if (used < s->max && pending < s->max - used)
        return 0;
    return err_set(
            err, -ENOSPC,
            "skip-host: limit reached: %zu hosts are skipped (MaxSkippedHosts); recover some or raise the limit",
            s->max);
}

int skipped_hosts_add(struct skipped_hosts *s, const char *host, bool has_ttl, int64_t ttl_min,
                      uint64_t now_ms, uint64_t *expire_at_ms, struct err *err)
{
    assert(host != NULL);
    size_t host_len = strlen(host);
    if (host_len == 0)
        return err_set(err, -EINVAL, "skip-host: empty host name");
    if (host_len > SKIPPED_HOST_NAME_MAX)
        return err_set(err, -EINVAL, "skip-host: host name longer than %d bytes",
                       SKIPPED_HOST_NAME_MAX);
    /* The original recovers the host on a negative TTL (its expiry lands in
     * the past); docs/semantics.md#skipped-hosts wants a bad TTL to change nothing. */
    if (has_ttl && ttl_min < 0)
        return err_set(err, -EINVAL, "skip-host: negative ttl %" PRId64, ttl_min);
    if (!has_ttl || ttl_min == 0)
        ttl_min = SKIPPED_HOST_DEFAULT_TTL_MIN;
    if ((uint64_t)ttl_min > (UINT64_MAX - now_ms) / MIN_MS)
        return err_set(err, -EINVAL, "skip-host: ttl %" PRId64 " minutes is too large", ttl_min);

    int rc = skipped_hosts_check_room(s, host, 0, err);
    if (rc < 0)
        return rc;
    uint64_t at_ms = now_ms + (uint64_t)ttl_min * MIN_MS;
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

static bool is_doomed_at(const char *host, const void *value, bool touched, void *arg)
{
    (void)host;
    (void)touched;
    return *(const uint64_t *)value <= *(const uint64_t *)arg;
}

size_t skipped_hosts_sweep(struct skipped_hosts *s, uint64_t now_ms)
{
    return opset_remove_if(&s->set, is_doomed_at, &now_ms);
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
    if (at != NULL) {
        uint64_t d = *at > expire_at_ms ? *at - expire_at_ms : expire_at_ms - *at;
        if (d <= slack_ms) {
            opset_touch(&s->set, host);
            return false;
        }
    }
    skipped_hosts_put(s, host, expire_at_ms);
    return true;
}

static bool is_untouched(const char *host, const void *value, bool touched, void *arg)
{
    (void)host;
    (void)value;
    (void)arg;
    return !touched;
}

bool skipped_hosts_sync_end(struct skipped_hosts *s)
{
    return opset_remove_if(&s->set, is_untouched, NULL) > 0;
}
