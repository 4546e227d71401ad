/* SPDX-License-Identifier: MIT */
/* Per-app rules held by the throttler (docs/semantics.md#app-rules): key ->
 * (expiry, rule), at most MaxAppRules of them, published in the snapshot
 * where checks look them up. A rule is set whole: setting one replaces what
 * the key had. Loop thread. */
#include "throttler/throttler_impl.h"

#include <errno.h>
#include <string.h>

#include "config/config.h"
#include "core/xalloc.h"
#include "snapshot/app_rule.h"

#define WHAT "app-rule"

void throttler_rules_init(struct throttler *t)
{
    opset_init(&t->rules, sizeof(struct throttler_rule_entry));
    t->rules_max = t->cfg->max_app_rules > 0 ? (size_t)t->cfg->max_app_rules
                                             : (size_t)APP_RULES_DEFAULT_MAX;
}

void throttler_rules_deinit(struct throttler *t)
{
    opset_deinit(&t->rules);
}

bool throttler_rules_sweep(struct throttler *t, uint64_t now_ms)
{
    return opset_sweep_expired(&t->rules, now_ms, true) > 0;
}

void throttler_mark_rules(struct throttler *t)
{
    t->dirty_rules = true;
    t->publish_pending = true;
}

int throttler_plan_rule(struct throttler *t, const char *key, const char *text, bool has_ttl,
                        int64_t ttl_min, uint64_t now_ms, size_t pending, struct app_rule *rule,
                        uint64_t *expire_at_ms, struct err *err)
{
    int rc = opset_check_name(WHAT, "app", key, FRENO_NAME_MAX, err);
    if (rc < 0)
        return rc;
    if (has_ttl && (rc = opset_check_ttl(WHAT, ttl_min, now_ms, err)) < 0)
        return rc;
    if ((rc = app_rule_parse(text, strlen(text), rule, err)) < 0)
        return rc;
    rc = opset_check_room(&t->rules, key, opset_len(&t->rules), t->rules_max, pending, WHAT,
                          "apps have rules (MaxAppRules); remove some", err);
    if (rc < 0)
        return rc;
    *expire_at_ms = has_ttl && ttl_min > 0 ? now_ms + (uint64_t)ttl_min * OPSET_MIN_MS : 0;
    return 0;
}

bool throttler_rule_is_new(struct throttler *t, const char *key)
{
    return opset_get(&t->rules, key) == NULL;
}

void throttler_put_rule(struct throttler *t, const char *key, uint64_t expire_at_ms,
                        const struct app_rule *rule)
{
    struct throttler_rule_entry *e = opset_put(&t->rules, key, NULL);
    e->expire_at_ms = expire_at_ms;
    memcpy(&e->rule, rule, sizeof(e->rule));
    throttler_mark_rules(t);
}

void throttler_remove_rule(struct throttler *t, const char *key)
{
    if (opset_del(&t->rules, key))
        throttler_mark_rules(t);
}

/* Reloads recompute expiries from whole seconds: within this, the same. */
#define RELOAD_EXPIRY_SLACK_MS 2000

/* Whether a reloaded expiry @b is the stored @a: both never, or both within
 * the slack of a reload that computes them from whole seconds. */
static bool same_expiry(uint64_t a, uint64_t b)
{
    if (a == 0 || b == 0)
        return a == b;
    return (a > b ? a - b : b - a) <= RELOAD_EXPIRY_SLACK_MS;
}

void throttler_replace_rules(struct throttler *t, const struct throttler_rule *v, size_t n)
{
    /* A reload every 10 s usually changes nothing: then nothing is rebuilt. */
    bool changed = false;
    opset_sync_begin(&t->rules);
    for (size_t i = 0; i < n; i++) {
        const struct throttler_rule_entry *cur = opset_get(&t->rules, v[i].key);
        if (cur != NULL && same_expiry(cur->expire_at_ms, v[i].expire_at_ms) &&
            app_rule_equal(&cur->rule, v[i].rule)) {
            opset_touch(&t->rules, v[i].key);
            continue;
        }
        struct throttler_rule_entry *e = opset_put(&t->rules, v[i].key, NULL);
        e->expire_at_ms = v[i].expire_at_ms;
        memcpy(&e->rule, v[i].rule, sizeof(e->rule));
        changed = true;
    }
    changed |= opset_remove_untouched(&t->rules, NULL) > 0;
    if (!changed)
        return;
    throttler_mark_rules(t);
    throttler_publish_at(t, throttler_now_ms(t));
}

void throttler_each_rule(struct throttler *t,
                         void (*fn)(const char *key, uint64_t expire_at_ms,
                                    const struct app_rule *rule, void *arg),
                         void *arg)
{
    const char *key;
    void *value;
    for (size_t it = 0; opset_next(&t->rules, &it, &key, &value);) {
        const struct throttler_rule_entry *e = value;
        fn(key, e->expire_at_ms, &e->rule, arg);
    }
}
