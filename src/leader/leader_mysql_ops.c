/* SPDX-License-Identifier: MIT */
/* Operator commands of the MySQL backend leader (docs/ha.md#operator-commands):
 * throttle, unthrottle, skip and recover are checked against the caps,
 * queued, written to the backend one at a time on the ops connection and
 * then applied here. A statement lost after it was sent is answered as
 * "outcome unknown", never as refused. Loop thread. */
#include "leader/leader_mysql_impl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/xalloc.h"
#include "log/log.h"
#include "loop/loop.h"
#include "snapshot/app_rule.h"
#include "throttler/opset.h"
#include "throttler/skipped_hosts.h"
#include "throttler/throttler.h"

#define TTL_MAX_MIN (10ll * 365 * 24 * 60) /* TIMESTAMP ends in 2038 */
/* Tries of a statement that never reached the server. */
#define OP_ATTEMPTS 2

enum op_phase { OP_WRITE, OP_READ_BACK };

/* One queued command and its statement. */
struct op {
    struct leader_queued q; /* first: a queue entry is an op */
    char *sql;
    enum op_phase phase;
    int attempts;
    bool adds; /* creates an entry here once stored: counts against the cap meanwhile */
};

static struct op *ops_head(const struct mysql_leader *m)
{
    return (struct op *)m->ops.head;
}

static void ops_kick(struct mysql_leader *m);

/* Answers the oldest command and drops it. */
static void op_finish(struct mysql_leader *m, int status, const char *msg)
{
    struct op *o = (struct op *)leader_queue_pop(&m->ops);
    loop_cmd_finish(m->loop, o->q.cmd, status, msg);
    free(o->sql);
    free(o);
}

static const char *cmd_what(const struct loop_cmd *cmd)
{
    switch (cmd->kind) {
    case LOOP_CMD_THROTTLE_APP:
        return "throttle-app";
    case LOOP_CMD_UNTHROTTLE_APP:
        return "unthrottle-app";
    case LOOP_CMD_SKIP_HOST:
        return "skip-host";
    case LOOP_CMD_RECOVER_HOST:
        return "recover-host";
    case LOOP_CMD_SET_APP_RULE:
        return "app-rule";
    case LOOP_CMD_REMOVE_APP_RULE:
        return "remove-app-rule";
    }
    return "command";
}

/* A throttle stored in the backend, applied here: as the row reads back,
 * or when it cannot be read back, with the same semantics on our copy (the
 * next reload settles it). */
static int apply_throttle(struct mysql_leader *m, const struct loop_cmd *cmd,
                          const struct myresult *readback, struct err *err)
{
    struct backend_app a = {0};
    enum backend_row kind = BACKEND_ROW_BAD;
    if (readback != NULL && readback->nrows == 1 && readback->ncols >= BACKEND_APP_COLUMNS)
        kind = backend_parse_app(readback->cells, clock_wall_ms(), &a, err);
    if (kind != BACKEND_ROW_OK)
        return throttler_throttle_app(m->t, cmd->name, cmd->has_ttl, cmd->ttl_min, cmd->has_ratio,
                                      cmd->ratio, err);
    throttler_put_app(m->t, cmd->name, a.expire_at_ms, a.ratio < 0 ? 1.0 : a.ratio);
    throttler_publish(m->t);
    return 0;
}

/* A rule stored in the backend, applied here with our clock (the next
 * reload brings the database's expiry). */
static int apply_rule(struct mysql_leader *m, const struct loop_cmd *cmd, struct err *err)
{
    struct app_rule rule;
    uint64_t expire_at_ms = 0;
    int rc = app_rule_parse(cmd->rule, strlen(cmd->rule), &rule, err);
    if (rc < 0)
        return rc;
    if (cmd->has_ttl && cmd->ttl_min > 0)
        expire_at_ms = clock_wall_ms() + (uint64_t)cmd->ttl_min * OPSET_MIN_MS;
    throttler_put_rule(m->t, cmd->name, expire_at_ms, &rule);
    throttler_publish(m->t);
    return 0;
}

/* The backend has the change: apply it here too and answer 200. */
static void op_apply(struct mysql_leader *m, const struct myresult *readback)
{
    const struct loop_cmd *cmd = ops_head(m)->q.cmd;
    struct err err = {0};
    int rc = 0;
    m->ops_gen++;
    switch (cmd->kind) {
    case LOOP_CMD_THROTTLE_APP:
        rc = apply_throttle(m, cmd, readback, &err);
        break;
    case LOOP_CMD_UNTHROTTLE_APP:
        throttler_unthrottle_app(m->t, cmd->name);
        break;
    case LOOP_CMD_SKIP_HOST:
        rc = throttler_skip_host(m->t, cmd->name, cmd->has_ttl, cmd->ttl_min, &err);
        break;
    case LOOP_CMD_RECOVER_HOST:
        throttler_recover_host(m->t, cmd->name);
        break;
    case LOOP_CMD_SET_APP_RULE:
        rc = apply_rule(m, cmd, &err);
        break;
    case LOOP_CMD_REMOVE_APP_RULE:
        throttler_remove_rule(m->t, cmd->name);
        throttler_publish(m->t);
        break;
    }
    if (rc < 0)
        log_warn("leader: %s %s: stored in the backend but not applied here: %s", cmd_what(cmd),
                 cmd->name, err.msg);
    op_finish(m, 200, "OK");
}

/* The statement failed: answer 500, saying when it may have been applied. */
static void op_refuse(struct mysql_leader *m, enum myconn_status status, const char *errmsg)
{
    const struct loop_cmd *cmd = ops_head(m)->q.cmd;
    /* A statement sent and then lost (timeout, dropped connection) may have
     * been applied: say so rather than let the client assume not. */
    bool unknown = status == MYCONN_ERR_TIMEOUT || status == MYCONN_ERR_IO;
    char msg[256];
    snprintf(msg, sizeof(msg), "%s: backend %s: %s%s", cmd_what(cmd), m->backend, errmsg,
             unknown ? "; the outcome is unknown: it may or may not be applied" : "");
    log_warn("leader: %s %s refused: %s", cmd_what(cmd), cmd->name, msg);
    op_finish(m, 500, msg);
}

static void on_op(struct myconn *c, enum myconn_status status, const struct myresult *res,
                  const char *errmsg, void *arg)
{
    struct mysql_leader *m = arg;
    struct op *o = ops_head(m);
    if (o->phase == OP_READ_BACK) {
        op_apply(m, status == MYCONN_OK ? res : NULL);
    } else if (status == MYCONN_ERR_CONNECT && o->attempts < OP_ATTEMPTS && !m->stopping) {
        /* Nothing reached the server, so trying again cannot apply it
         * twice: ops_kick() below sends it again. */
    } else if (status != MYCONN_OK) {
        op_refuse(m, status, errmsg);
    } else if (o->q.cmd->kind == LOOP_CMD_THROTTLE_APP) {
        m->ops_gen++;
        o->phase = OP_READ_BACK;
        leader_mysql_send(c, backend_sql_read_app(o->q.cmd->name), on_op, m);
        return;
    } else {
        op_apply(m, NULL);
    }
    ops_kick(m);
}

static void ops_kick(struct mysql_leader *m)
{
    struct op *o = ops_head(m);
    if (o == NULL || myconn_is_busy(m->ops_conn))
        return;
    o->attempts++;
    myconn_query(m->ops_conn, o->sql, on_op, m);
}

/* Checks @cmd and builds its statement; NULL with @msg set when refused. */
static char *op_sql(const struct mysql_leader *m, const struct loop_cmd *cmd, char *msg,
                    size_t size)
{
    const char *what = cmd_what(cmd);
    size_t len = strlen(cmd->name);
    if (len == 0 || len > BACKEND_NAME_MAX) {
        snprintf(msg, size, "%s: name must be 1 to %d bytes, got %zu", what, BACKEND_NAME_MAX, len);
        return NULL;
    }
    if (cmd->has_ttl && (cmd->ttl_min < 0 || cmd->ttl_min > TTL_MAX_MIN)) {
        snprintf(msg, size, "%s: ttl %" PRId64 " minutes is outside 0..%lld", what, cmd->ttl_min,
                 TTL_MAX_MIN);
        return NULL;
    }
    switch (cmd->kind) {
    case LOOP_CMD_THROTTLE_APP: {
        if (cmd->has_ratio && !(cmd->ratio >= 0 && cmd->ratio <= 1)) {
            snprintf(msg, size, "%s: ratio must be in [0..1] range; got %g", what, cmd->ratio);
            return NULL;
        }
        bool permanent = !cmd->has_ttl || cmd->ttl_min == 0;
        if (permanent && !m->apps_expiry_nullable) {
            snprintf(
                    msg, size,
                    "%s: backend %s: throttled_apps.expires_at is NOT NULL, so a throttle without ttl cannot be stored",
                    what, m->backend);
            return NULL;
        }
        return backend_sql_throttle_app(cmd->name, cmd->has_ttl, cmd->ttl_min, cmd->has_ratio,
                                        cmd->ratio);
    }
    case LOOP_CMD_UNTHROTTLE_APP:
        return backend_sql_unthrottle_app(cmd->name);
    case LOOP_CMD_SKIP_HOST:
        return backend_sql_skip_host(cmd->name, cmd->has_ttl && cmd->ttl_min > 0
                                                        ? cmd->ttl_min
                                                        : SKIPPED_HOST_DEFAULT_TTL_MIN);
    case LOOP_CMD_RECOVER_HOST:
        return backend_sql_recover_host(cmd->name);
    case LOOP_CMD_SET_APP_RULE:
        return backend_sql_set_rule(cmd->name, cmd->rule, cmd->has_ttl ? cmd->ttl_min : 0);
    case LOOP_CMD_REMOVE_APP_RULE:
        return backend_sql_remove_rule(cmd->name);
    }
    snprintf(msg, size, "%s: unknown command", what);
    return NULL;
}

/* A rule is checked whole (text, TTL, MaxAppRules counting the queued new
 * ones) before it is written. */
static int check_rule(const struct mysql_leader *m, const struct loop_cmd *cmd, bool *adds,
                      struct err *err)
{
    if (!m->rules_present)
        return err_set(err, -ENOENT,
                       "app-rule: backend %s has no table %s; create it with freno --init-backend",
                       m->backend, BACKEND_RULES_TABLE);
    *adds = throttler_rule_is_new(m->t, cmd->name);
    size_t pending = 0;
    for (const struct leader_queued *e = m->ops.head; e != NULL && *adds; e = e->next)
        pending += ((const struct op *)e)->adds && e->cmd->kind == cmd->kind;
    struct app_rule rule;
    uint64_t expire_at_ms;
    return throttler_plan_rule(m->t, cmd->name, cmd->rule, cmd->has_ttl, cmd->ttl_min,
                               clock_wall_ms(), pending, &rule, &expire_at_ms, err);
}

/* The caps are checked before the backend is written: a request past them
 * changes nothing, here or there. Queued commands that will add an entry
 * count as added. Returns 0, or negative with @err set; *@adds tells
 * whether @cmd would add an entry. */
static int check_room(const struct mysql_leader *m, const struct loop_cmd *cmd, bool *adds,
                      struct err *err)
{
    *adds = false;
    if (cmd->kind == LOOP_CMD_SET_APP_RULE)
        return check_rule(m, cmd, adds, err);
    if (cmd->kind != LOOP_CMD_THROTTLE_APP && cmd->kind != LOOP_CMD_SKIP_HOST)
        return 0;
    bool app = cmd->kind == LOOP_CMD_THROTTLE_APP;
    *adds = app ? throttler_app_is_new(m->t, cmd->name) : throttler_host_is_new(m->t, cmd->name);
    if (!*adds)
        return 0;
    size_t pending = 0;
    for (const struct leader_queued *e = m->ops.head; e != NULL; e = e->next)
        pending += ((const struct op *)e)->adds && e->cmd->kind == cmd->kind;
    return app ? throttler_room_for_app(m->t, cmd->name, pending, err)
               : throttler_room_for_host(m->t, cmd->name, pending, err);
}

void leader_mysql_submit(struct leader *l, struct loop_cmd *cmd)
{
    struct mysql_leader *m = l->impl;
    if (m->stopping) {
        loop_cmd_finish(m->loop, cmd, 503, "shutting down");
        return;
    }
    bool adds;
    struct err err = {0};
    if (check_room(m, cmd, &adds, &err) < 0) {
        loop_cmd_finish(m->loop, cmd, err.code == -EINVAL ? 400 : 500, err.msg);
        if (err.code == -ENOENT)
            m->schema_ok = false; /* look again: it may have been created since */
        return;
    }
    if (cmd->kind == LOOP_CMD_REMOVE_APP_RULE && !m->rules_present) {
        loop_cmd_finish(m->loop, cmd, 500,
                        "remove-app-rule: the backend has no table app_rules; nothing to remove");
        m->schema_ok = false;
        return;
    }
    char msg[256];
    char *sql = op_sql(m, cmd, msg, sizeof(msg));
    if (sql == NULL) {
        loop_cmd_finish(m->loop, cmd, 500, msg);
        return;
    }
    struct op *o = xcalloc(1, sizeof(*o));
    o->q.cmd = cmd;
    o->sql = sql;
    o->adds = adds;
    leader_queue_push(&m->ops, &o->q);
    ops_kick(m);
}

void leader_mysql_ops_abandon(struct mysql_leader *m)
{
    while (ops_head(m) != NULL)
        op_finish(m, 503, "shutting down");
}
