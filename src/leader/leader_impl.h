/* SPDX-License-Identifier: MIT */
/* Interface between leader.c and its implementations, and what they share:
 * the shutdown callback, the queue of operator commands and the status
 * shown for this node. Loop thread. */
#pragma once

#include "core/audit.h"
#include "leader/leader.h"
#include "snapshot/snapshot.h"

struct leader_ops {
    const char *kind;
    void (*submit)(struct leader *l, struct loop_cmd *cmd);
    /* Starts giving up leadership; calls leader_shutdown_finished() once
     * done, possibly before returning. */
    void (*shutdown)(struct leader *l);
    void (*free)(struct leader *l);
    /* Keeps an audit record; NULL: leader.c keeps it in memory. */
    void (*audit)(struct leader *l, const struct audit_record *r);
};

struct leader {
    const struct leader_ops *ops;
    struct leader_params p;
    void *impl;
    void (*done)(void *arg); /* leader_shutdown's callback, until called */
    void *done_arg;
    /* The role last shown to p.on_role (copies). */
    bool known;
    bool is_leader;
    char *state;
    char *leader_id;
    /* The trail GET /audit-log shows when the implementation keeps none of
     * its own (leader_show_audit). */
    struct audit_ring audit;
};

/* Implementations: fill l->ops and l->impl; return 0 or negative with @err. */
int leader_local_init(struct leader *l, struct err *err);
/* MySQL backend (leader_mysql*.c); honours p.force_leadership. */
int leader_mysql_init(struct leader *l, struct err *err);
/* Raft (leader_raft*.c), single-node mode when RaftNodes is empty; honours
 * p.force_leadership. */
int leader_raft_init(struct leader *l, struct err *err);

/* Calls leader_shutdown's callback, the first time only; later calls, and
 * calls after leader_free() began, do nothing. */
void leader_shutdown_finished(struct leader *l);

/* Operator commands waiting their turn: both implementations carry them
 * out one at a time, in the order they came. An implementation that needs
 * more per command embeds this as the first member of its own struct. */
struct leader_queued {
    struct leader_queued *next;
    struct loop_cmd *cmd;
};

struct leader_queue {
    struct leader_queued *head; /* the oldest, NULL when empty */
    struct leader_queued *tail;
};

/* Appends @e (owned by the caller, linked until popped). */
void leader_queue_push(struct leader_queue *q, struct leader_queued *e);
/* Unlinks and returns the oldest entry, or NULL when @q is empty. */
struct leader_queued *leader_queue_pop(struct leader_queue *q);

/* The consensus status of this node as /leader-check and the consensus
 * endpoints show it: copies of @service_id, @state and @leader_id, with the
 * configured Domain and ShareDomain. The caller fills in the rest and hands
 * it to leader_publish(). */
struct snap_leader leader_status(const struct leader *l, const char *service_id, const char *state,
                                 const char *leader_id);
/* Shows @ring at GET /audit-log. */
void leader_show_audit(struct leader *l, const struct audit_ring *ring);
/* Hands @s to the throttler (which takes its strings) and tells
 * leader_params.on_role when the role in it changed. */
void leader_publish(struct leader *l, const struct snap_leader *s);
/* The node now knows whether it leads (see struct leader_role); tells
 * on_role the first time. Call it after leader_publish() of that status. */
void leader_set_known(struct leader *l);
