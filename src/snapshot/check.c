/* SPDX-License-Identifier: MIT */
/* Check decision, mirroring the original's order: unknown store type, then
 * low-priority denial, then operator throttles ("app/store" then "app"),
 * then the metrics themselves, which must first be fresh. Each metric that
 * applies is judged alone; the worst one decides. Any thread; reads only the
 * snapshot. */
#include "snapshot/check.h"

#include <stdio.h>
#include <string.h>

#define MSG_NO_METRIC "No such metric"
#define MSG_DENIED    "App denied"
#define MSG_EXCEEDED  "Threshold exceeded"
#define MSG_NO_APP    "no app indicated"
#define SECOND_MS     1000u

/* The entry @key if it exists, has not expired and denies the draw @rnd. */
static const struct snap_app *app_denied(const struct snapshot *s, const char *key, uint64_t now_ms,
                                         double rnd)
{
    const struct snap_app *a = snapshot_find_app(s, key);
    if (a == NULL)
        return NULL;
    if (a->expire_at_ms != 0 && a->expire_at_ms <= now_ms)
        return NULL;
    return rnd < a->ratio ? a : NULL;
}

/* "@app/@store" into @key of @size bytes; false if it does not fit. Checks
 * build this key on every request: no printf. */
static bool app_store_key(char *key, size_t size, const char *app, const char *store)
{
    size_t a = strlen(app);
    size_t b = strlen(store);
    if (a + 1 + b >= size)
        return false;
    memcpy(key, app, a + 1);
    key[a] = '/'; /* over app's NUL */
    memcpy(key + a + 1, store, b + 1);
    return true;
}

static const struct snap_app *app_throttled(const struct snapshot *s, const char *app,
                                            const char *store, uint64_t now_ms, double rnd)
{
    if (s == NULL || s->apps == NULL || s->apps->len == 0)
        return NULL;
    char key[512];
    const struct snap_app *a = NULL;
    if (app_store_key(key, sizeof(key), app, store))
        a = app_denied(s, key, now_ms, rnd);
    return a != NULL ? a : app_denied(s, app, now_ms, rnd);
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

/* Whole seconds from @now_ms until @at_ms, rounded up, at least 1. */
static unsigned seconds_until(uint64_t at_ms, uint64_t now_ms)
{
    if (at_ms <= now_ms)
        return 1;
    uint64_t s = (at_ms - now_ms + SECOND_MS - 1) / SECOND_MS;
    return s > UINT32_MAX ? UINT32_MAX : (unsigned)s;
}

/* Retry-After of a refusal by throttle @a: the time it has left when it
 * always denies, else a second (the next check may pass). */
static unsigned throttle_retry_after(const struct snap_app *a, uint64_t now_ms)
{
    if (a->ratio < 1)
        return 1;
    if (a->expire_at_ms == 0)
        return CHECK_RETRY_UNTIL_UNTHROTTLED_S;
    return seconds_until(a->expire_at_ms, now_ms);
}

/* The rule that holds @app checking @store at @now_ms: "app/store" first,
 * then "app", as throttles; expired ones do not count. The daemon's own
 * apps have none. */
static const struct snap_rule *rule_for(const struct snapshot *s, const char *app,
                                        const char *store, uint64_t now_ms)
{
    if (s == NULL || s->rules == NULL || s->rules->len == 0 || app[0] == '\0' ||
        strcmp(app, CHECK_APP_FRENO) == 0 || strcmp(app, CHECK_APP_SHARE_DOMAIN) == 0)
        return NULL;
    char key[512];
    const struct snap_rule *r = NULL;
    if (app_store_key(key, sizeof(key), app, store))
        r = snapshot_find_rule(s, key);
    if (r == NULL || (r->expire_at_ms != 0 && r->expire_at_ms <= now_ms))
        r = snapshot_find_rule(s, app);
    if (r == NULL || (r->expire_at_ms != 0 && r->expire_at_ms <= now_ms))
        return NULL;
    return r;
}

/* Whether metric @m applies to the app of @r, and the threshold it is held
 * to there (@reads_override: @m is the metric a /check-read threshold
 * replaces). Without a rule every metric applies at the cluster's
 * threshold. A rule may leave metrics out (exempt, or a Metrics list) and
 * set a metric's threshold or a factor of the cluster's; the threshold a
 * /check-read names still wins, as the client asked for it. */
static bool metric_rule(const struct snap_rule *rule, const struct check_request *r,
                        const struct snap_metric *m, bool reads_override, struct check_metric *out)
{
    if (rule != NULL && !app_rule_applies(&rule->rule, m->metric))
        return false;
    const struct app_rule_limit *l =
            rule != NULL ? app_rule_limit_of(&rule->rule, m->metric) : NULL;
    if (reads_override && r->override_threshold > 0) {
        out->threshold = r->override_threshold;
        out->threshold_json = NULL;
        out->threshold_from = CHECK_THRESHOLD_READ;
    } else if (l != NULL && l->factor) {
        out->threshold = m->threshold * l->value;
        out->threshold_json = NULL;
        out->threshold_from = CHECK_THRESHOLD_RULE_FACTOR;
    } else if (l != NULL) {
        out->threshold = l->value;
        out->threshold_json = NULL;
        out->threshold_from = CHECK_THRESHOLD_RULE;
    } else {
        out->threshold = m->threshold;
        out->threshold_json = m->threshold_json;
        out->threshold_from = CHECK_THRESHOLD_CLUSTER;
    }
    return true;
}

/* Judges metric @cm->m against its threshold (rules 5 to 8 for one metric). */
static void metric_judge(const struct check_request *r, struct check_metric *cm)
{
    const struct snap_metric *m = cm->m;
    cm->over = false;
    if (!m->has_value) {
        cm->status = 404;
        cm->message = MSG_NO_METRIC;
    } else if (!m->ok) {
        cm->status = 500;
        cm->message = m->err;
    } else if (m->value > cm->threshold) {
        cm->status = 429;
        cm->over = true;
        cm->message = MSG_EXCEEDED;
    } else if (strcmp(r->app, CHECK_APP_FRENO) != 0 && m->share_known &&
               m->share_seconds_since_healthy >= 1) {
        /* The freno app produces the health others read; letting it depend on
         * them would let two domains keep each other unhealthy forever. */
        cm->status = 429;
        cm->message = MSG_EXCEEDED;
    } else {
        cm->status = 200;
        cm->message = "";
    }
}

/* How bad a metric's status is: the worst metric decides. */
static int severity(int status)
{
    switch (status) {
    case 500:
        return 3;
    case 429:
        return 2;
    case 404:
        return 1;
    default:
        return 0;
    }
}

/* Fills out->metrics with the metrics of @c that apply to @r (only the one
 * @r names, if it names one). Returns false when @r names a metric @c does
 * not have. */
static bool select_metrics(const struct check_request *r, const struct snap_cluster *c,
                           struct check_result *out)
{
    for (size_t i = 0; i < c->nmetrics && out->nmetrics < FRENO_METRICS_MAX; i++) {
        const struct snap_metric *m = &c->metrics[i];
        if (r->metric != NULL && strcmp(r->metric, m->metric) != 0)
            continue;
        struct check_metric *cm = &out->metrics[out->nmetrics];
        cm->m = m;
        bool reads_override = r->metric != NULL || i == 0;
        if (!metric_rule(out->rule, r, m, reads_override, cm))
            continue;
        metric_judge(r, cm);
        out->nmetrics++;
    }
    return r->metric == NULL || snap_cluster_metric(c, r->metric) != NULL;
}

/* The first metric that applies and refused a normal check within the
 * low-priority window, or -1. */
static int low_priority_denial(const struct check_result *out, uint64_t now_ms)
{
    for (size_t i = 0; i < out->nmetrics; i++) {
        uint64_t at = atomic_load_explicit(&out->metrics[i].m->live->normal_throttled_at_ms,
                                           memory_order_relaxed);
        if (at != 0 && now_ms < at + CHECK_LOW_PRIORITY_WINDOW_MS)
            return (int)i;
    }
    return -1;
}

/* Rules 5 to 8 over the metrics that apply: the worst one decides. */
static void decide_by_metrics(const struct check_request *r, uint64_t now_ms,
                              struct check_result *out)
{
    if (out->nmetrics == 0) {
        /* No metric applies to this app: only operator throttles hold it. */
        out->status = 200;
        out->message = "";
        return;
    }
    size_t w = 0;
    unsigned retry_s = 0;
    for (size_t i = 0; i < out->nmetrics; i++) {
        const struct check_metric *cm = &out->metrics[i];
        if (severity(cm->status) > severity(out->metrics[w].status))
            w = i;
        if ((cm->status == 429 || cm->status == 500) && cm->m->retry_after_s > retry_s)
            retry_s = cm->m->retry_after_s;
    }
    const struct check_metric *cm = &out->metrics[w];
    out->decided_by = (int)w;
    out->reason = cm->status == 200 ? CHECK_REASON_NONE : CHECK_REASON_METRIC;
    out->status = cm->status;
    out->message = cm->message;
    if (cm->status != 404) {
        out->threshold = cm->threshold;
        out->threshold_json = cm->threshold_json;
    }
    if (cm->status == 200 || cm->status == 429) {
        out->value = cm->m->value;
        out->value_json = cm->m->value_json;
    }
    if (cm->status == 429 || cm->status == 500)
        out->retry_after_s = retry_s > 0 ? retry_s : 1;
    if (cm->status != 429 || r->low_priority || r->read_check ||
        strcmp(r->app, CHECK_APP_FRENO) == 0)
        return;
    /* A normal check refused with 429 opens the low-priority window of each
     * metric above its threshold. */
    for (size_t i = 0; i < out->nmetrics; i++)
        if (out->metrics[i].over)
            atomic_store_explicit(&out->metrics[i].m->live->normal_throttled_at_ms, now_ms,
                                  memory_order_relaxed);
}

static void answer(struct check_result *out, int status, enum check_reason reason,
                   const char *message)
{
    out->status = status;
    out->reason = reason;
    out->message = message;
}

void check_decide(const struct snapshot *s, const struct check_request *r, uint64_t now_ms,
                  double rnd, struct check_result *out)
{
    out->status = 0;
    out->value = 0;
    out->threshold = 0;
    out->message = NULL;
    out->value_json = "0";
    out->threshold_json = "0";
    out->known_store = false;
    out->details = (s != NULL && s->check_details) || r->metric != NULL;
    out->reason = CHECK_REASON_NONE;
    out->cluster = NULL;
    out->decided_by = -1;
    out->throttle = NULL;
    out->retry_after_s = 0;
    out->nmetrics = 0;
    out->rule = NULL;
    if (strcmp(r->store_type, "mysql") != 0) {
        answer(out, 404, CHECK_REASON_NOT_MYSQL, MSG_NO_METRIC);
        goto out;
    }
    out->known_store = true;
    const struct snap_cluster *c = snapshot_find_cluster(s, r->store_name);
    bool has_metric = true;
    if (c != NULL) {
        out->cluster = c;
        out->rule = rule_for(s, r->app, r->store_name, now_ms);
        /* An answer a rule shaped says so. */
        out->details = out->details || c->nmetrics > 1 || out->rule != NULL;
        has_metric = select_metrics(r, c, out);
    }

    if (r->app[0] == '\0') {
        answer(out, 417, CHECK_REASON_NO_APP, MSG_NO_APP);
        goto out;
    }
    if (r->low_priority) {
        int i = low_priority_denial(out, now_ms);
        if (i >= 0) {
            answer(out, 417, CHECK_REASON_LOW_PRIORITY, MSG_DENIED);
            out->decided_by = i;
            uint64_t at = atomic_load_explicit(&out->metrics[i].m->live->normal_throttled_at_ms,
                                               memory_order_relaxed);
            out->retry_after_s = seconds_until(at + CHECK_LOW_PRIORITY_WINDOW_MS, now_ms);
            goto out;
        }
    }
    const struct snap_app *a =
            s != NULL ? app_throttled(s, r->app, r->store_name, now_ms, rnd) : NULL;
    if (a != NULL) {
        answer(out, 417, CHECK_REASON_THROTTLED, MSG_DENIED);
        out->throttle = a;
        out->retry_after_s = throttle_retry_after(a, now_ms);
        goto out;
    }
    if (c != NULL) {
        const char *stale = stale_reason(s, r);
        if (stale != NULL) {
            answer(out, 500, CHECK_REASON_STALE, stale);
            out->retry_after_s = 1;
            goto out;
        }
    }
    if (c == NULL) {
        answer(out, 404, CHECK_REASON_NO_CLUSTER, MSG_NO_METRIC);
        goto out;
    }
    if (!has_metric) {
        answer(out, 404, CHECK_REASON_NO_METRIC, MSG_NO_METRIC);
        goto out;
    }
    decide_by_metrics(r, now_ms, out);
out:
    if (out->status == 404 && r->ok_if_not_exists)
        out->status = 200;
}
