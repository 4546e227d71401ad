/* SPDX-License-Identifier: MIT */
/* Check decision, mirroring the original's order: unknown store type, then
 * low-priority denial, then operator throttles ("app/store" then "app"),
 * then the metric itself, which must first be fresh. Any thread; reads only
 * the snapshot. */
#include "snapshot/check.h"

#include <stdio.h>
#include <string.h>

static bool app_denied(const struct snapshot *s, const char *key, uint64_t now_ms, double rnd)
{
    const struct snap_app *a = snapshot_find_app(s, key);
    if (a == NULL)
        return false;
    if (a->expire_at_ms != 0 && a->expire_at_ms <= now_ms)
        return false;
    return rnd < a->ratio;
}

static bool app_throttled(const struct snapshot *s, const char *app, const char *store,
                          uint64_t now_ms, double rnd)
{
    char key[512];
    int n = snprintf(key, sizeof(key), "%s/%s", app, store);
    if (n > 0 && (size_t)n < sizeof(key) && app_denied(s, key, now_ms, rnd))
        return true;
    return app_denied(s, app, now_ms, rnd);
}

/* Why the metrics of @s cannot be trusted now, or NULL if they can. A
 * stalled loop neither expires aggregates nor steps down, so the snapshot
 * would keep its last values (and its leadership) for as long as it stalls. */
static const char *stale_reason(const struct snapshot *s, const struct check_request *r)
{
    if (s == NULL || r->now_boot_ms == 0)
        return NULL;
    if (s->stale_after_ms != 0 && r->now_boot_ms > r->loop_alive_boot_ms &&
        r->now_boot_ms - r->loop_alive_boot_ms > s->stale_after_ms)
        return CHECK_MSG_LOOP_STALLED;
    const struct snap_leader *l = s->leader ? &s->leader->l : NULL;
    if (l != NULL && l->is_leader && l->lease_until_boot_ms != 0 &&
        r->now_boot_ms >= l->lease_until_boot_ms)
        return CHECK_MSG_LEASE_EXPIRED;
    return NULL;
}

void check_decide(const struct snapshot *s, const struct check_request *r, uint64_t now_ms,
                  double rnd, struct check_result *out)
{
    memset(out, 0, sizeof(*out));
    out->value_json = "0";
    out->threshold_json = "0";
    if (strcmp(r->store_type, "mysql") != 0) {
        out->status = 404;
        out->message = "No such metric";
        goto out;
    }
    out->known_store = true;
    const struct snap_metric *m = snapshot_find_metric(s, r->store_name);

    if (r->app[0] == '\0') {
        out->status = 417;
        out->message = "no app indicated";
        goto out;
    }
    if (r->low_priority && m != NULL) {
        uint64_t at = atomic_load_explicit(&m->live->normal_throttled_at_ms, memory_order_relaxed);
        if (at != 0 && now_ms < at + CHECK_LOW_PRIORITY_WINDOW_MS) {
            out->status = 417;
            out->message = "App denied";
            goto out;
        }
    }
    if (s != NULL && app_throttled(s, r->app, r->store_name, now_ms, rnd)) {
        out->status = 417;
        out->message = "App denied";
        goto out;
    }
    if (m != NULL) {
        const char *stale = stale_reason(s, r);
        if (stale != NULL) {
            out->status = 500;
            out->message = stale;
            goto out;
        }
    }
    if (m == NULL || !m->has_value) {
        out->status = 404;
        out->message = "No such metric";
        goto out;
    }
    out->threshold = r->override_threshold > 0 ? r->override_threshold : m->threshold;
    out->threshold_json = r->override_threshold > 0 ? NULL : m->threshold_json;
    if (!m->ok) {
        out->status = 500;
        out->message = m->err;
        goto out;
    }
    out->value = m->value;
    out->value_json = m->value_json;
    if (m->value > out->threshold) {
        out->status = 429;
        out->message = "Threshold exceeded";
        if (!r->low_priority && !r->read_check && strcmp(r->app, CHECK_APP_FRENO) != 0)
            atomic_store_explicit(&m->live->normal_throttled_at_ms, now_ms, memory_order_relaxed);
    } else if (strcmp(r->app, CHECK_APP_FRENO) != 0 && m->share_known &&
               m->share_seconds_since_healthy >= 1) {
        /* The freno app produces the health others read; letting it depend on
         * them would let two domains keep each other unhealthy forever. */
        out->status = 429;
        out->message = "Threshold exceeded";
    } else {
        out->status = 200;
        out->message = "";
    }
out:
    if (out->status == 404 && r->ok_if_not_exists)
        out->status = 200;
}
