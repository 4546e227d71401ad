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

#include "core/xalloc.h"

#define MIN_MS (60ull * 1000)

void skipped_hosts_init(struct skipped_hosts *s)
{
    strmap_init(&s->map);
}

void skipped_hosts_deinit(struct skipped_hosts *s)
{
    const char *key;
    void *value;
    for (size_t i = 0; strmap_next(&s->map, &i, &key, &value);)
        free(value);
    strmap_deinit(&s->map);
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

    uint64_t at_ms = now_ms + (uint64_t)ttl_min * MIN_MS;
    skipped_hosts_put(s, host, at_ms);
    if (expire_at_ms != NULL)
        *expire_at_ms = at_ms;
    return 0;
}

void skipped_hosts_put(struct skipped_hosts *s, const char *host, uint64_t expire_at_ms)
{
    uint64_t *at = strmap_get(&s->map, host);
    if (at == NULL) {
        at = xmalloc(sizeof(*at));
        strmap_put(&s->map, host, at);
    }
    *at = expire_at_ms;
}

void skipped_hosts_remove(struct skipped_hosts *s, const char *host)
{
    free(strmap_del(&s->map, host));
}

size_t skipped_hosts_sweep(struct skipped_hosts *s, uint64_t now_ms)
{
    const char *key;
    void *value;
    char **doomed = NULL;
    size_t n = 0;

    /* The map must not change while we walk it, so collect first. */
    for (size_t i = 0; strmap_next(&s->map, &i, &key, &value);) {
        if (*(const uint64_t *)value > now_ms)
            continue;
        if (doomed == NULL)
            doomed = xmalloc(s->map.len * sizeof(*doomed));
        doomed[n++] = xstrdup(key);
    }
    for (size_t i = 0; i < n; i++) {
        free(strmap_del(&s->map, doomed[i]));
        free(doomed[i]);
    }
    free(doomed);
    return n;
}

bool skipped_hosts_is_skipped(const struct skipped_hosts *s, const char *host, uint64_t now_ms)
{
    const uint64_t *at = strmap_get(&s->map, host);
    return at != NULL && *at > now_ms;
}

size_t skipped_hosts_count(const struct skipped_hosts *s)
{
    return s->map.len;
}
