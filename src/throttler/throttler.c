/* SPDX-License-Identifier: MIT */
/* The throttler's lifetime and pace: creating and freeing it, the one clock
 * it reads, the timers that drive aggregation, self checks, renderings and
 * sweeps, leadership, and operator commands from HTTP threads. Everything
 * here runs on the loop thread and takes no lock; check records from HTTP
 * threads arrive through the event rings. */
#include "throttler/throttler.h"
#include "throttler/throttler_impl.h"

#include <errno.h>
#include <stdlib.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/token.h"
#include "core/xalloc.h"
#include "loop/loop.h"
#include "metrics/check_counters.h"

static uint64_t wall_clock(void *arg)
{
    (void)arg;
    return clock_wall_ms();
}

uint64_t throttler_now_ms(const struct throttler *t)
{
    return t->clock(t->clock_arg);
}

/* ---- timers ---- */

static void on_collect(uv_timer_t *h)
{
    throttler_tick_collect(h->data);
}

static void on_aggregate(uv_timer_t *h)
{
    throttler_tick_aggregate(h->data);
}

static void on_self_check(uv_timer_t *h)
{
    throttler_tick_self_check(h->data);
}

static void on_slow(uv_timer_t *h)
{
    throttler_tick_slow(h->data);
}

void throttler_tick_sweep(struct throttler *t)
{
    uint64_t now_ms = throttler_now_ms(t);
    if (app_throttle_sweep(&t->apps, now_ms) > 0)
        throttler_mark_apps(t);
    if (throttler_rules_sweep(t, now_ms))
        throttler_mark_rules(t);
    if (skipped_hosts_sweep(&t->skipped, now_ms) > 0) {
        throttler_mark_hosts(t);
        throttler_apply_all_hosts(t, now_ms);
    }
    if (recent_apps_sweep(&t->recent, now_ms) > 0)
        t->dirty_recent = true;
    if (t->publish_pending)
        throttler_publish_at(t, now_ms);
}

static void on_sweep(uv_timer_t *h)
{
    throttler_tick_sweep(h->data);
}

/* The throttler's pace: what each of its timers runs, and how often. */
static const struct {
    uv_timer_cb cb;
    uint64_t interval_ms;
} timers[THROTTLER_TIMERS] = {
        {on_collect, THROTTLER_COLLECT_INTERVAL_MS},
        {on_aggregate, THROTTLER_AGGREGATE_INTERVAL_MS},
        {on_self_check, THROTTLER_SELF_CHECK_INTERVAL_MS},
        {on_slow, THROTTLER_SLOW_INTERVAL_MS},
        {on_sweep, THROTTLER_SWEEP_INTERVAL_MS},
};

/* ---- lifetime ---- */

static void operator_state_init(struct throttler *t, uint64_t now_ms)
{
    const struct config *cfg = t->cfg;
    app_throttle_init(&t->apps, now_ms);
    app_throttle_set_max(&t->apps, (size_t)cfg->max_throttled_apps);
    skipped_hosts_init(&t->skipped);
    skipped_hosts_set_max(&t->skipped, (size_t)cfg->max_skipped_hosts);
    throttler_rules_init(t);
    recent_apps_init(&t->recent, (size_t)cfg->max_recent_apps);
    t->checks =
            check_counters_new((size_t)cfg->max_counted_apps, (size_t)cfg->max_counted_app_stores);
}

static void operator_state_deinit(struct throttler *t)
{
    app_throttle_deinit(&t->apps);
    skipped_hosts_deinit(&t->skipped);
    throttler_rules_deinit(t);
    recent_apps_deinit(&t->recent);
    check_counters_free(t->checks);
}

static void clusters_init(struct throttler *t, uint64_t now_ms)
{
    t->nclusters = t->cfg->clusters_len;
    t->clusters = xcalloc(t->nclusters ? t->nclusters : 1, sizeof(*t->clusters));
    for (size_t i = 0; i < t->nclusters; i++)
        throttler_cluster_init(t, &t->clusters[i], &t->cfg->clusters[i], now_ms);
}

static void clusters_deinit(struct throttler *t)
{
    for (size_t i = 0; i < t->nclusters; i++)
        throttler_cluster_deinit(&t->clusters[i]);
    free(t->clusters);
}

static struct snap_leaders *first_leader_status(const struct throttler *t)
{
    struct snap_leader l = {
            .state = xstrdup("Unhealthy"),
            .leader_id = xstrdup(""),
            .service_id = xstrdup(t->service_id),
            .domain = xstrdup(t->cfg->domain ? t->cfg->domain : ""),
            .share_domain = xstrdup(t->cfg->share_domain ? t->cfg->share_domain : ""),
    };
    return snap_leaders_new(&l);
}

/* ControlToken (named TOKEN_DEFAULT_NAME) and ControlTokens, or NULL when
 * control requests need no token. */
struct token_set *throttler_tokens_of(const struct config *cfg)
{
    if (cfg->control_token == NULL && cfg->control_tokens.len == 0)
        return NULL;
    struct token_set *s = token_set_new();
    if (cfg->control_token != NULL)
        token_set_add(s, TOKEN_DEFAULT_NAME, cfg->control_token);
    for (size_t i = 0; i < cfg->control_tokens.len; i++)
        token_set_add(s, cfg->control_tokens.names[i], cfg->control_tokens.secrets[i]);
    return s;
}

struct throttler *throttler_new(const struct throttler_params *p)
{
    struct throttler *t = xcalloc(1, sizeof(*t));
    t->loop = p->loop;
    loop_gate_init(&t->connect_gate, t->loop, THROTTLER_MAX_CONNECTING);
    t->cfg = p->cfg;
    t->clock = p->clock != NULL ? p->clock : wall_clock;
    t->clock_arg = p->clock_arg;
    t->history = p->history;
    uint64_t now_ms = throttler_now_ms(t);
    t->hostname = xstrdup(p->hostname);
    t->service_id = xstrdup(p->service_id);
    t->memcache_json = throttler_memcache_json(p->cfg);
    t->tokens = throttler_tokens_of(p->cfg);
    operator_state_init(t, now_ms);
    clusters_init(t, now_ms);
    t->next.leader = first_leader_status(t);
    throttler_publish_first(t, now_ms);

    for (size_t i = 0; i < THROTTLER_TIMERS; i++)
        t->timers[i] = loop_timer_start(t->loop, timers[i].cb, t, timers[i].interval_ms,
                                        timers[i].interval_ms);
    return t;
}

void throttler_free(struct throttler *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < THROTTLER_TIMERS; i++)
        loop_timer_close(&t->timers[i]);
    clusters_deinit(t);
    operator_state_deinit(t);
    snapshot_parts_unref(&t->next);
    free(t->hostname);
    free(t->service_id);
    free(t->memcache_json);
    token_set_free(t->tokens);
    free(t);
}

/* ---- leadership and commands ---- */

void throttler_set_leader(struct throttler *t, bool is_leader)
{
    if (t->is_leader == is_leader)
        return;
    t->is_leader = is_leader;
    uint64_t now_ms = throttler_now_ms(t);
    if (is_leader) {
        throttler_start_probes(t, now_ms);
        return;
    }
    for (size_t i = 0; i < t->nclusters; i++)
        for (size_t j = 0; j < t->clusters[i].nmetrics; j++)
            t->clusters[i].metrics[j].has_value = false;
    throttler_rebuild_metrics(t);
    throttler_publish_at(t, now_ms);
}

bool throttler_is_leader(const struct throttler *t)
{
    return t->is_leader;
}

void throttler_apply_cmd(struct throttler *t, struct loop_cmd *cmd)
{
    struct err err = {0};
    int rc = 0;
    switch (cmd->kind) {
    case LOOP_CMD_THROTTLE_APP:
        rc = throttler_throttle_app(t, cmd->name, cmd->has_ttl, cmd->ttl_min, cmd->has_ratio,
                                    cmd->ratio, &err);
        break;
    case LOOP_CMD_UNTHROTTLE_APP:
        throttler_unthrottle_app(t, cmd->name);
        break;
    case LOOP_CMD_SKIP_HOST:
        rc = throttler_skip_host(t, cmd->name, cmd->has_ttl, cmd->ttl_min, &err);
        break;
    case LOOP_CMD_RECOVER_HOST:
        throttler_recover_host(t, cmd->name);
        break;
    case LOOP_CMD_SET_APP_RULE: {
        struct app_rule rule;
        uint64_t expire_at_ms = 0;
        uint64_t now_ms = throttler_now_ms(t);
        rc = throttler_plan_rule(t, cmd->name, cmd->rule, cmd->has_ttl, cmd->ttl_min, now_ms, 0,
                                 &rule, &expire_at_ms, &err);
        if (rc == 0) {
            throttler_put_rule(t, cmd->name, expire_at_ms, &rule);
            throttler_publish_at(t, now_ms);
        }
        break;
    }
    case LOOP_CMD_REMOVE_APP_RULE:
        throttler_remove_rule(t, cmd->name);
        throttler_publish_at(t, throttler_now_ms(t));
        break;
    }
    /* A rule the HTTP side let through but that is still bad is the
     * client's error, as there. */
    int status = rc == -EINVAL && cmd->kind == LOOP_CMD_SET_APP_RULE ? 400 : 500;
    loop_cmd_finish(t->loop, cmd, rc < 0 ? status : 200, rc < 0 ? err.msg : "OK");
}
