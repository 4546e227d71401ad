/* SPDX-License-Identifier: MIT */
/* Interface between leader.c and its implementations. Loop thread. */
#pragma once

#include "leader/leader.h"

struct leader_ops {
    const char *kind;
    void (*submit)(struct leader *l, struct loop_cmd *cmd);
    void (*shutdown)(struct leader *l, void (*done)(void *arg), void *arg);
    void (*free)(struct leader *l);
};

struct leader {
    const struct leader_ops *ops;
    struct leader_params p;
    void *impl;
};

/* Implementations: fill l->ops and l->impl; return 0 or negative with @err. */
int leader_local_init(struct leader *l, struct err *err);
/* MySQL backend (leader_mysql.c); honours p.force_leadership. */
int leader_mysql_init(struct leader *l, struct err *err);
/* Raft (leader_raft.c), single-node mode when RaftNodes is empty; honours
 * p.force_leadership. */
int leader_raft_init(struct leader *l, struct err *err);
