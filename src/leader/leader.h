/* SPDX-License-Identifier: MIT */
/* Leadership and replicated operator state. One implementation is chosen at
 * start: the MySQL backend (BackendMySQLHost), else raft (RaftDataDir; with
 * no RaftNodes that is single-node mode), else in memory. Each honours
 * --force-leadership, tells the throttler whether to probe, publishes the
 * consensus status, and carries out operator commands. Loop thread. */
#pragma once

#include <stdbool.h>

#include "core/err.h"

struct audit_record;
struct loop;
struct loop_cmd;
struct config;
struct throttler;
struct leader;

/* This node's role, for the service manager. @known turns true once, when
 * the node knows whether it leads: at once with --force-leadership, in
 * memory, and for single-node raft as soon as it leads (a lone voter elects
 * itself within milliseconds); a raft cluster node with its first raft
 * state (a follower knows it does not lead, even with no leader in sight);
 * the MySQL backend once its first election round was answered or failed,
 * and when that round elected this node, once it serves (its operator state
 * loaded) or steps down. */
struct leader_role {
    bool known;
    bool is_leader;        /* /leader-check answers 200 */
    const char *mode;      /* "raft", "single-node", "mysql-backend", "forced", "in-memory" */
    const char *state;     /* as /consensus/state shows it */
    const char *leader_id; /* "" when none is known */
};

/* Called with the role whenever it changed; the strings are valid during the
 * call. Loop thread. */
typedef void leader_role_fn(const struct leader_role *r, void *arg);

struct leader_params {
    struct loop *loop;
    const struct config *cfg;
    struct throttler *throttler;
    const char *service_id;
    bool force_leadership;
    leader_role_fn *on_role; /* may be NULL; may be called from leader_new() */
    void *role_arg;
};

/* Picks and starts the implementation. NULL with @err on failure. */
struct leader *leader_new(const struct leader_params *p, struct err *err);
/* Carries out an operator command; finishes it with loop_cmd_finish(). */
void leader_submit(struct leader *l, struct loop_cmd *cmd);
/* Keeps @r, a finished control command, in the audit trail: the MySQL
 * backend's audit_log table, the raft state (leader only), or memory; and
 * what GET /audit-log shows. Never waits. */
void leader_audit(struct leader *l, const struct audit_record *r);
/* Graceful stop: gives up leadership (e.g. releases the backend row), then
 * calls @done. @done may run before this returns. */
void leader_shutdown(struct leader *l, void (*done)(void *arg), void *arg);
/* Frees @l; NULL is fine. After leader_shutdown's callback. */
void leader_free(struct leader *l);
/* Creates the backend tables idempotently (--init-backend), blocking; for
 * the main thread before the loop starts. Returns 0 or negative with @err. */
int leader_init_backend(const struct config *cfg, struct err *err);
