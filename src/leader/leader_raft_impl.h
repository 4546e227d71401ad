/* SPDX-License-Identifier: MIT */
/* Private to the raft leader (docs/ha.md#raft), whose two parts share one
 * struct: leader_raft.c drives libraft (start, stop, leadership, the data
 * directory) and leader_raft_fsm.c is the replicated state machine and the
 * operator commands that go through it. Only those files include this
 * header, which is why it may name libraft's and libuv's types. Loop
 * thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include <raft.h>
#include <raft/uv.h>

#include "leader/leader_impl.h"

/* Operator commands are rare and the state is usually small: snapshot often,
 * so a restart replays little and a new node catches up from one snapshot.
 * A snapshot costs in proportion to the state (up to MaxThrottledApps plus
 * MaxSkippedHosts entries), so with a large state it is taken after one
 * command per SNAPSHOT_ENTRIES_PER_COMMAND entries instead, keeping the
 * cost per command constant. */
#define SNAPSHOT_THRESHOLD           64
#define SNAPSHOT_ENTRIES_PER_COMMAND 64
#define SNAPSHOT_TRAILING            16

struct rnode {
    struct leader *l;
    struct throttler *t;
    const struct config *cfg;
    uv_loop_t *uv;
    bool single;
    bool forced;
    char *self; /* our raft address, as peers and /raft/leader show it */
    raft_id self_id;
    char **nodes; /* cluster mode: canonical RaftNodes, sorted, unique */
    size_t nnodes;
    const char *dir; /* RaftDataDir, borrowed from the config */
    int lock_fd;

    struct raft raft;
    struct raft_io io;
    struct raft_fsm fsm;
    struct raft_uv_transport transport;
    bool transport_ready;
    bool io_ready;
    bool raft_ready; /* raft_init succeeded: raft_close is owed */
    bool raft_closing;
    bool raft_closed;

    /* Single-node mode's transport: no network, and a handle to call the
     * close callback from the loop rather than from inside libraft. */
    uv_timer_t null_timer;
    bool null_timer_open;
    raft_uv_transport_close_cb null_close_cb;

    uv_timer_t poll;
    bool poll_open;

    /* What the throttler was last told. */
    bool shown;
    int shown_state;
    char *shown_leader;
    bool shown_is_leader;

    /* Leadership is usable once a barrier of the current term is applied:
     * then every entry committed by earlier leaders is applied here too. */
    raft_term ready_term;
    bool barrier_pending;
    struct raft_barrier barrier;

    /* Operator commands: queued, and proposed one at a time so each is
     * planned against the state its predecessors left. */
    struct leader_queue queue;
    struct loop_cmd *inflight;
    struct raft_apply apply_req;

    /* The audit trail in the raft state: the newest AUDIT_TRAIL_MAX
     * entries, shown at GET /audit-log when it changed (from the poll). */
    struct audit_ring audit;
    bool audit_dirty;
    unsigned audit_inflight; /* audit entries proposed, not applied yet */
    uint64_t audit_dropped;  /* not proposed: too many waiting */
    /* Audit entries waiting to be proposed from the poll: the hook runs
     * inside libraft's callbacks, where proposing is not safe. */
    struct audit_record *audit_pending;
    size_t audit_pending_len;

    bool stopping;
    bool transfer_pending;
    uint64_t transfer_deadline_ms;
    /* Stopping, raft_close() waits for audit entries still in flight
     * (libraft 0.15 may fault when closed mid-append), until this deadline. */
    bool close_waiting;
    uint64_t close_deadline_ms;
    struct raft_transfer transfer;
};

static inline struct loop *leader_raft_loop(const struct rnode *n)
{
    return n->l->p.loop;
}

/* leader_raft.c */

/* raft's state, or RAFT_UNAVAILABLE before start and once closing. */
int leader_raft_state(struct rnode *n);
/* True when this node is raft's leader and may propose: a barrier of the
 * current term has been applied. */
bool leader_raft_is_usable(struct rnode *n);

/* leader_raft_fsm.c */

/* Fills n->fsm with the state machine's callbacks. */
void leader_raft_fsm_init(struct rnode *n);
/* leader_ops.submit: queues @cmd for the log (raft leader only). */
void leader_raft_submit(struct leader *l, struct loop_cmd *cmd);
/* Proposes the next queued command when none is in flight. */
void leader_raft_pump(struct rnode *n);
/* leader_ops.audit: proposes @r as an audit entry (leader only). */
void leader_raft_audit(struct leader *l, const struct audit_record *r);
/* Proposes the audit entries waiting (leader only; elsewhere they are
 * dropped: their log lines stay), then shows the trail at GET /audit-log if
 * it changed. From the poll timer, outside libraft's callbacks. */
void leader_raft_show_audit(struct rnode *n);
/* Answers every queued command @status with @msg. */
void leader_raft_fail_queued(struct rnode *n, int status, const char *msg);
