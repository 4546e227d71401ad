/* SPDX-License-Identifier: MIT */
/* The raft leader's replicated state machine and the operator commands that
 * go through it (docs/ha.md#replicated-commands): the leader turns throttle,
 * unthrottle, skip and recover into absolute values, proposes them one at a
 * time, and every node applies them in log order; snapshots hold the whole
 * operator state. Loop thread. */
#include "leader/leader_raft_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"
#include "leader/raft_codec.h"
#include "log/log.h"
#include "loop/loop.h"
#include "snapshot/app_rule.h"
#include "throttler/throttler.h"

/* ---- operator commands ---- */

void leader_raft_fail_queued(struct rnode *n, int status, const char *msg)
{
    struct leader_queued *p;
    while ((p = leader_queue_pop(&n->queue)) != NULL) {
        loop_cmd_finish(leader_raft_loop(n), p->cmd, status, msg);
        free(p);
    }
}

/* Turns an operator request into the absolute command every node applies. */
static int plan(struct rnode *n, const struct loop_cmd *cmd, struct raft_codec_cmd *out,
                struct err *err)
{
    uint64_t now_ms = loop_now_ms(leader_raft_loop(n));
    memset(out, 0, sizeof(*out));
    if (strlen(cmd->name) > RAFT_CODEC_KEY_MAX)
        return err_set(err, -EINVAL, "name longer than %d bytes", RAFT_CODEC_KEY_MAX);
    snprintf(out->key, sizeof(out->key), "%s", cmd->name);
    switch (cmd->kind) {
    case LOOP_CMD_THROTTLE_APP:
        out->op = RAFT_CODEC_THROTTLE;
        return throttler_plan_throttle_app(n->t, cmd->name, cmd->has_ttl, cmd->ttl_min,
                                           cmd->has_ratio, cmd->ratio, now_ms, &out->expire_at_ms,
                                           &out->ratio, err);
    case LOOP_CMD_UNTHROTTLE_APP:
        out->op = RAFT_CODEC_UNTHROTTLE;
        return 0;
    case LOOP_CMD_SKIP_HOST:
        out->op = RAFT_CODEC_SKIP;
        return throttler_plan_skip_host(n->t, cmd->name, cmd->has_ttl, cmd->ttl_min, now_ms,
                                        &out->expire_at_ms, err);
    case LOOP_CMD_RECOVER_HOST:
        out->op = RAFT_CODEC_RECOVER;
        return 0;
    case LOOP_CMD_SET_APP_RULE: {
        out->op = RAFT_CODEC_SET_RULE;
        struct app_rule rule;
        /* Room is counted against what is applied: commands go one at a
         * time, so none is on its way meanwhile. */
        int rc = throttler_plan_rule(n->t, cmd->name, cmd->rule, cmd->has_ttl, cmd->ttl_min, now_ms,
                                     0, &rule, &out->expire_at_ms, err);
        if (rc < 0)
            return rc;
        snprintf(out->rule, sizeof(out->rule), "%s", cmd->rule);
        return 0;
    }
    case LOOP_CMD_REMOVE_APP_RULE:
        out->op = RAFT_CODEC_REMOVE_RULE;
        return 0;
    }
    return err_set(err, -EINVAL, "unknown command %d", (int)cmd->kind);
}

/* Copies @len bytes of JSON into a raft_malloc'ed buffer padded with blanks
 * to a multiple of 8 bytes: libraft 0.15 writes entries unpadded but reads
 * them back as if padded, so any other length corrupts its segment files.
 * Trailing blanks are still valid JSON. */
static struct raft_buffer to_raft_buffer(const char *text, size_t len)
{
    size_t padded = (len + 7) / 8 * 8;
    struct raft_buffer buf = {.base = raft_malloc(padded ? padded : 8), .len = padded ? padded : 8};
    if (buf.base == NULL) {
        log_error("raft: out of memory for %zu bytes", buf.len);
        abort();
    }
    memcpy(buf.base, text, len);
    memset((char *)buf.base + len, ' ', buf.len - len);
    return buf;
}

static void on_applied(struct raft_apply *req, int status, void *result)
{
    struct rnode *n = req->data;
    (void)result;
    struct loop_cmd *cmd = n->inflight;
    n->inflight = NULL;
    if (status == 0) {
        throttler_publish_pending(n->t);
        loop_cmd_finish(leader_raft_loop(n), cmd, 200, "OK");
    } else if (status == RAFT_SHUTDOWN || n->stopping) {
        loop_cmd_finish(leader_raft_loop(n), cmd, 503, "shutting down");
    } else {
        /* The entry may still commit under the next leader: the outcome is
         * unknown, and retrying is safe since commands set absolute values. */
        char msg[200];
        snprintf(msg, sizeof(msg), "not leader: %s before the command was committed",
                 raft_strerror(status));
        loop_cmd_finish(leader_raft_loop(n), cmd, 500, msg);
    }
    leader_raft_pump(n);
}

/* Plans @cmd and proposes it; one that cannot be proposed is answered at
 * once. */
static void propose(struct rnode *n, struct loop_cmd *cmd)
{
    struct err err = {0};
    struct raft_codec_cmd c;
    char *text = NULL;
    size_t len = 0;
    if (plan(n, cmd, &c, &err) < 0 || raft_codec_encode_cmd(&c, &text, &len, &err) < 0) {
        loop_cmd_finish(leader_raft_loop(n), cmd,
                        (cmd->kind == LOOP_CMD_SET_APP_RULE && err.code == -EINVAL) ? 400 : 500,
                        err.msg);
        return;
    }
    struct raft_buffer buf = to_raft_buffer(text, len);
    free(text);
    n->apply_req.data = n;
    int rv = raft_apply(&n->raft, &n->apply_req, &buf, 1, on_applied);
    if (rv != 0) {
        raft_free(buf.base);
        char msg[300];
        if (rv == RAFT_NOTLEADER)
            snprintf(msg, sizeof(msg), "not leader");
        else
            snprintf(msg, sizeof(msg), "raft: apply: %s", raft_errmsg(&n->raft));
        loop_cmd_finish(leader_raft_loop(n), cmd, 500, msg);
        return;
    }
    n->inflight = cmd;
}

void leader_raft_pump(struct rnode *n)
{
    while (n->inflight == NULL && n->queue.head != NULL && !n->stopping) {
        if (leader_raft_state(n) != RAFT_LEADER) {
            leader_raft_fail_queued(n, 500, "not leader");
            return;
        }
        if (!leader_raft_is_usable(n))
            return; /* the barrier's callback calls us again */
        struct leader_queued *p = leader_queue_pop(&n->queue);
        struct loop_cmd *cmd = p->cmd;
        free(p);
        propose(n, cmd);
    }
}

void leader_raft_submit(struct leader *l, struct loop_cmd *cmd)
{
    struct rnode *n = l->impl;
    if (n->stopping) {
        loop_cmd_finish(leader_raft_loop(n), cmd, 503, "shutting down");
        return;
    }
    /* As the original: only the raft leader takes commands, forced or not. */
    if (leader_raft_state(n) != RAFT_LEADER) {
        loop_cmd_finish(leader_raft_loop(n), cmd, 500, "not leader");
        return;
    }
    struct leader_queued *p = xcalloc(1, sizeof(*p));
    p->cmd = cmd;
    leader_queue_push(&n->queue, p);
    leader_raft_pump(n);
}

/* ---- the audit trail ---- */

/* Audit entries waiting to be proposed or committed, at most: a leader
 * whose log does not commit drops entries beyond it (and logs it) rather
 * than queue without bound. Commands commit one at a time and the poll
 * proposes every 20 ms, so a healthy leader stays far below it. */
#define AUDIT_INFLIGHT_MAX 256

struct audit_apply {
    struct raft_apply req;
    struct rnode *n;
};

static void on_audit_applied(struct raft_apply *req, int status, void *result)
{
    struct audit_apply *a = req->data;
    (void)result;
    a->n->audit_inflight--;
    if (status != 0 && status != RAFT_SHUTDOWN && !a->n->stopping)
        log_warn("raft: an audit entry was not committed: %s", raft_strerror(status));
    free(a);
}

void leader_raft_audit(struct leader *l, const struct audit_record *r)
{
    struct rnode *n = l->impl;
    /* Only the leader writes the log; a follower's refusals are in its own
     * log lines. */
    if (n == NULL || n->stopping || leader_raft_state(n) != RAFT_LEADER)
        return;
    if (n->audit_pending_len + n->audit_inflight >= AUDIT_INFLIGHT_MAX) {
        if (n->audit_dropped++ % 100 == 0)
            log_warn("raft: %d audit entries wait for the log to commit: %llu dropped so far",
                     AUDIT_INFLIGHT_MAX, (unsigned long long)n->audit_dropped);
        return;
    }
    if (n->audit_pending == NULL)
        n->audit_pending = xcalloc(AUDIT_INFLIGHT_MAX, sizeof(*n->audit_pending));
    n->audit_pending[n->audit_pending_len++] = *r;
}

/* Proposes @r as an audit entry. */
static void propose_audit(struct rnode *n, const struct audit_record *r)
{
    struct raft_codec_cmd c = {.op = RAFT_CODEC_AUDIT, .audit = *r};
    struct err err = {0};
    char *text = NULL;
    size_t len = 0;
    if (raft_codec_encode_cmd(&c, &text, &len, &err) < 0) {
        log_warn("raft: audit entry: %s", err.msg);
        return;
    }
    struct raft_buffer buf = to_raft_buffer(text, len);
    free(text);
    struct audit_apply *a = xcalloc(1, sizeof(*a));
    a->n = n;
    a->req.data = a;
    if (raft_apply(&n->raft, &a->req, &buf, 1, on_audit_applied) != 0) {
        raft_free(buf.base);
        free(a);
        return;
    }
    n->audit_inflight++;
}

void leader_raft_show_audit(struct rnode *n)
{
    size_t pending = n->audit_pending_len;
    n->audit_pending_len = 0;
    if (pending > 0 && !n->stopping && leader_raft_is_usable(n))
        for (size_t i = 0; i < pending; i++)
            propose_audit(n, &n->audit_pending[i]);
    if (!n->audit_dirty)
        return;
    n->audit_dirty = false;
    leader_show_audit(n->l, &n->audit);
}

/* ---- state machine ---- */

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    struct rnode *n = fsm->data;
    struct raft_codec_cmd c;
    struct err err = {0};
    *result = NULL;
    /* Every node skips a bad entry the same way; refusing it would stop
     * this node from ever applying anything after it. */
    if (raft_codec_decode_cmd(buf->base, buf->len, &c, &err) < 0) {
        log_error("raft: skipping a log entry: %s", err.msg);
        return 0;
    }
    log_debug("raft: apply %s %s", raft_codec_op_name(c.op), c.key);
    switch (c.op) {
    case RAFT_CODEC_THROTTLE:
        throttler_put_app(n->t, c.key, c.expire_at_ms, c.ratio);
        break;
    case RAFT_CODEC_UNTHROTTLE:
        throttler_remove_app(n->t, c.key);
        break;
    case RAFT_CODEC_SKIP:
        throttler_put_skipped_host(n->t, c.key, c.expire_at_ms);
        break;
    case RAFT_CODEC_RECOVER:
        throttler_remove_skipped_host(n->t, c.key);
        break;
    case RAFT_CODEC_SET_RULE: {
        /* The decoder checked the text already. */
        struct app_rule rule;
        if (app_rule_parse(c.rule, strlen(c.rule), &rule, &err) == 0)
            throttler_put_rule(n->t, c.key, c.expire_at_ms, &rule);
        break;
    }
    case RAFT_CODEC_REMOVE_RULE:
        throttler_remove_rule(n->t, c.key);
        break;
    case RAFT_CODEC_AUDIT:
        audit_ring_push(&n->audit, &c.audit);
        n->audit_dirty = true;
        break;
    }
    /* Published by on_applied() on the leader, before it answers, and by
     * the throttler's next tick elsewhere: a replay of thousands of entries
     * at start must not rebuild the snapshot after each. */
    return 0;
}

static void collect_app(const char *key, uint64_t expire_at_ms, double ratio, void *arg)
{
    raft_codec_state_add_app(arg, key, expire_at_ms, ratio);
}

static void collect_host(const char *host, uint64_t expire_at_ms, void *arg)
{
    raft_codec_state_add_host(arg, host, expire_at_ms);
}

static void collect_rule(const char *key, uint64_t expire_at_ms, const struct app_rule *rule,
                         void *arg)
{
    char text[APP_RULE_TEXT_MAX];
    if (app_rule_format(rule, text, sizeof(text)) > 0)
        raft_codec_state_add_rule(arg, key, expire_at_ms, text);
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct rnode *n = fsm->data;
    struct raft_codec_state s = {0};
    throttler_each_app(n->t, collect_app, &s);
    throttler_each_skipped_host(n->t, collect_host, &s);
    throttler_each_rule(n->t, collect_rule, &s);
    size_t trail_len;
    struct audit_record *trail = audit_ring_newest_first(&n->audit, &trail_len);
    for (size_t i = trail_len; i > 0; i--)
        raft_codec_state_add_audit(&s, &trail[i - 1]);
    free(trail);
    char *text;
    size_t len;
    raft_codec_encode_state(&s, &text, &len);
    size_t entries = s.apps_len + s.hosts_len + s.rules_len;
    raft_codec_state_deinit(&s);
    unsigned threshold = SNAPSHOT_THRESHOLD;
    if (entries / SNAPSHOT_ENTRIES_PER_COMMAND > threshold)
        threshold = (unsigned)(entries / SNAPSHOT_ENTRIES_PER_COMMAND);
    raft_set_snapshot_threshold(&n->raft, threshold);
    /* libraft frees both with raft_free (fsm version 1). */
    struct raft_buffer *b = raft_malloc(sizeof(*b));
    if (b == NULL) {
        free(text);
        return RAFT_NOMEM;
    }
    *b = to_raft_buffer(text, len);
    free(text);
    *bufs = b;
    *n_bufs = 1;
    log_debug("raft: snapshot of %zu bytes", len);
    return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    struct rnode *n = fsm->data;
    struct raft_codec_state s = {0};
    struct err err = {0};
    /* On failure libraft keeps ownership of @buf and frees it. */
    if (raft_codec_decode_state(buf->base, buf->len, &s, &err) < 0) {
        log_error("raft: cannot restore a snapshot: %s", err.msg);
        return RAFT_MALFORMED;
    }
    raft_free(buf->base);
    /* In one step each: entry by entry, every put would rebuild what the
     * snapshot shows, quadratic in the number of entries. */
    struct throttler_app *apps = xcalloc(s.apps_len ? s.apps_len : 1, sizeof(*apps));
    for (size_t i = 0; i < s.apps_len; i++)
        apps[i] = (struct throttler_app){.key = s.apps[i].key,
                                         .expire_at_ms = s.apps[i].expire_at_ms,
                                         .ratio = s.apps[i].ratio};
    throttler_replace_apps(n->t, apps, s.apps_len);
    free(apps);
    struct throttler_host *hosts = xcalloc(s.hosts_len ? s.hosts_len : 1, sizeof(*hosts));
    for (size_t i = 0; i < s.hosts_len; i++)
        hosts[i] = (struct throttler_host){.host = s.hosts[i].host,
                                           .expire_at_ms = s.hosts[i].expire_at_ms};
    throttler_replace_skipped_hosts(n->t, hosts, s.hosts_len);
    free(hosts);
    struct app_rule *parsed = xcalloc(s.rules_len ? s.rules_len : 1, sizeof(*parsed));
    struct throttler_rule *rules = xcalloc(s.rules_len ? s.rules_len : 1, sizeof(*rules));
    size_t nrules = 0;
    for (size_t i = 0; i < s.rules_len; i++) {
        if (app_rule_parse(s.rules[i].rule, strlen(s.rules[i].rule), &parsed[nrules], &err) < 0)
            continue; /* the decoder left such rules out already */
        rules[nrules] = (struct throttler_rule){.key = s.rules[i].key,
                                                .expire_at_ms = s.rules[i].expire_at_ms,
                                                .rule = &parsed[nrules]};
        nrules++;
    }
    throttler_replace_rules(n->t, rules, nrules);
    free(rules);
    free(parsed);
    if (s.rules_skipped > 0)
        log_error("raft: snapshot: left out %zu app rule(s) this build cannot read; first: %s",
                  s.rules_skipped, s.rules_skipped_first);
    audit_ring_clear(&n->audit);
    for (size_t i = 0; i < s.audit_len; i++)
        audit_ring_push(&n->audit, &s.audit[i]);
    n->audit_dirty = true;
    log_info(
            "raft: restored a snapshot: %zu app throttle(s), %zu skipped host(s), %zu app rule(s), %zu audit entries",
            s.apps_len, s.hosts_len, nrules, s.audit_len);
    raft_codec_state_deinit(&s);
    throttler_publish_pending(n->t);
    return 0;
}

void leader_raft_fsm_init(struct rnode *n)
{
    n->audit.cap = AUDIT_TRAIL_MAX;
    n->fsm.version = 1;
    n->fsm.data = n;
    n->fsm.apply = fsm_apply;
    n->fsm.snapshot = fsm_snapshot;
    n->fsm.restore = fsm_restore;
}
