/* SPDX-License-Identifier: MIT */
/* The event loop (libuv) that owns all mutable daemon state, and the bounded
 * command queue through which other threads ask it to change that state.
 * Submitters never wait on the loop: they get a ticket and a callback. The
 * queue's mutex is one of the daemon's two locks. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/audit.h"

struct loop;

enum loop_cmd_kind {
    LOOP_CMD_THROTTLE_APP,
    LOOP_CMD_UNTHROTTLE_APP,
    LOOP_CMD_SKIP_HOST,
    LOOP_CMD_RECOVER_HOST,
    LOOP_CMD_SET_APP_RULE,    /* name: app key; rule: its canonical text; ttl */
    LOOP_CMD_REMOVE_APP_RULE, /* name: app key */
};

/* Room for a per-app rule's text in a command (APP_RULE_TEXT_MAX). */
#define LOOP_CMD_RULE_MAX 1024

/* A request from an HTTP thread. Filled by the submitter, answered by the
 * loop (status is an HTTP code, msg the error text when not 200). */
struct loop_cmd {
    enum loop_cmd_kind kind;
    char name[256]; /* app key ("app" or "app/store") or host name */
    bool has_ttl;
    int64_t ttl_min; /* minutes */
    bool has_ratio;
    double ratio;
    char rule[LOOP_CMD_RULE_MAX]; /* LOOP_CMD_SET_APP_RULE */
    int status;
    char msg[256];
    /* Who asked and what, for the audit trail; the loop fills in nothing. */
    struct audit_record audit;
};

typedef void loop_cmd_fn(struct loop_cmd *cmd, void *arg);

/* Default bound of the command queue (loop_set_queue_max). */
#define LOOP_CMD_QUEUE_MAX_DEFAULT 32

/* How a submitted command ended, as its submitter sees it. */
enum loop_cmd_outcome {
    LOOP_CMD_PENDING,         /* no answer yet */
    LOOP_CMD_ANSWERED,        /* the loop applied or refused it: status and msg say which */
    LOOP_CMD_EXPIRED_QUEUED,  /* timed out before the loop took it: it will never be applied */
    LOOP_CMD_EXPIRED_RUNNING, /* timed out while being carried out: it may or may not apply */
    LOOP_CMD_SHUT_DOWN,       /* the queue closed first; like the two above, by dispatch state */
};

/* What the queue has done since loop_new(), for logs and tests. */
struct loop_cmd_stats {
    uint64_t submitted;
    uint64_t refused_full;    /* loop_cmd_submit() returned -EAGAIN */
    uint64_t expired_queued;  /* answered LOOP_CMD_EXPIRED_QUEUED */
    uint64_t expired_running; /* answered LOOP_CMD_EXPIRED_RUNNING */
    uint64_t dropped;         /* taken off the queue unapplied: its client had its answer */
};

/* A submitted command, owned by its submitter until loop_ticket_release(). */
struct loop_ticket;
/* Called once per submitted command when its answer is ready (from the loop
 * thread, the thread calling loop_cmd_expire() or loop_cmd_close()), with no
 * lock held; never from inside loop_cmd_submit(). Not called for a ticket
 * released before its answer; a release racing the answer may return while
 * the call is still running. */
typedef void loop_cmd_done_fn(void *arg);

/* Creates the loop. Main thread. */
struct loop *loop_new(void);
/* Closes every handle still open, runs the loop until they are closed and
 * frees it. NULL is fine. Main thread, after loop_run returned. */
void loop_free(struct loop *l);
/* The libuv loop (uv_loop_t *), for modules that include <uv.h>. */
void *loop_uv(struct loop *l);
/* Runs until loop_stop(). Main thread. */
int loop_run(struct loop *l);
/* Makes loop_run return. Loop thread. */
void loop_stop(struct loop *l);

/* Installs the handler called on the loop thread for each submitted command.
 * Commands are handed over one at a time, in order: the next one only after
 * the handler called loop_cmd_finish() for the previous one, which it must
 * do exactly once. */
void loop_set_cmd_handler(struct loop *l, loop_cmd_fn *fn, void *arg);
/* Bounds the commands the loop holds (queued plus the one being carried
 * out) to @max (at least 1). Main thread, before any submit. */
void loop_set_queue_max(struct loop *l, unsigned max);
/* Queues a copy of @cmd and wakes the loop. Returns 0 with *@out set, or
 * -EAGAIN when the queue holds its maximum already, or -ESHUTDOWN once
 * loop_cmd_close() was called (*@out NULL). On success @done(@arg) is called
 * exactly once, when the loop answered, when @timeout_ms passed (see
 * loop_cmd_expire) or when the queue closed. Never waits. Any thread. */
int loop_cmd_submit(struct loop *l, const struct loop_cmd *cmd, uint32_t timeout_ms,
                    loop_cmd_done_fn *done, void *arg, struct loop_ticket **out);
/* Copies the command with its answer (status, msg; meaningful for
 * LOOP_CMD_ANSWERED) into @out and tells how it ended. Any thread. */
enum loop_cmd_outcome loop_ticket_result(struct loop *l, const struct loop_ticket *t,
                                         struct loop_cmd *out);
/* Lets go of @t (NULL is fine). A command not answered yet is abandoned: the
 * loop drops it if it did not take it yet, and done is not called. Any
 * thread. */
void loop_ticket_release(struct loop *l, struct loop_ticket *t);
/* Answers every command whose timeout passed at @now_mono_ms (CLOCK_MONOTONIC
 * milliseconds, clock_mono_ms()): LOOP_CMD_EXPIRED_QUEUED if the loop had not
 * taken it (it then drops it instead of applying it), else
 * LOOP_CMD_EXPIRED_RUNNING. Does not depend on the loop running, so a
 * stalled loop still answers its clients. Returns how many it answered. Any
 * thread but the loop's. */
size_t loop_cmd_expire(struct loop *l, uint64_t now_mono_ms);
/* Refuses every later submit with -ESHUTDOWN and answers every pending
 * command LOOP_CMD_SHUT_DOWN. Any thread. */
void loop_cmd_close(struct loop *l);
/* Completes @cmd with @status and @msg (may be NULL) and hands the loop the
 * next command. If its client already had a timeout answer, the result is
 * only logged. Loop thread. */
void loop_cmd_finish(struct loop *l, struct loop_cmd *cmd, int status, const char *msg);
/* Called on the loop thread by loop_cmd_finish() with every finished
 * command and the @status and @msg it finishes with: the audit trail's
 * feed. */
typedef void loop_cmd_finished_fn(const struct loop_cmd *cmd, int status, const char *msg,
                                  void *arg);
/* Installs @fn (NULL: none). Main thread, before the loop runs. */
void loop_set_finish_hook(struct loop *l, loop_cmd_finished_fn *fn, void *arg);
/* A copy of the queue's counters. Any thread. */
struct loop_cmd_stats loop_cmd_stats(struct loop *l);

/* Every LOOP_HEARTBEAT_MS the loop stores the boot clock (clock_boot_ms())
 * as proof that it runs; readers compare it with their own clock to refuse
 * answers from a stalled loop. */
#define LOOP_HEARTBEAT_MS 100
/* The loop's last heartbeat on the boot clock (loop_new() counts as the
 * first). Lock-free; any thread. */
uint64_t loop_alive_boot_ms(struct loop *l);

/* The wall clock now, in epoch ms: read at each call, not cached per loop
 * iteration. Loop thread. */
uint64_t loop_now_ms(struct loop *l);

/* A call deferred to the loop's next turn, embedded in its owner: however
 * many are queued, they share one timer, so deferring costs no timer of
 * its own (the probes defer one query start each, thousands a second). */
struct loop_deferred;
typedef void loop_deferred_fn(struct loop_deferred *d);
struct loop_deferred {
    struct loop_deferred *prev, *next; /* private */
    loop_deferred_fn *fn;
    bool queued;
    bool gate_place; /* private: a loop_gate gave it a place it has not taken */
};
/* Makes @d ready to be deferred with @fn. */
void loop_deferred_init(struct loop_deferred *d, loop_deferred_fn *fn);
/* Calls @d's function from the loop's timer phase, as a timer of 0 ms
 * would, never from inside loop_defer(); a @d already queued stays queued
 * once. Calls queued from a deferred function run in the next batch, after
 * the current one. Loop thread. */
void loop_defer(struct loop *l, struct loop_deferred *d);
/* Takes @d off the queue if it is queued: its function is not called. Loop
 * thread. */
void loop_defer_cancel(struct loop *l, struct loop_deferred *d);

/* A bound on how many operations of one kind run at once (the probes'
 * connection handshakes): beyond it, callers wait their turn, first come
 * first served, and each is called again when a place is free. Embedded in
 * its owner; loop thread only. */
struct loop_gate {
    struct loop *loop;
    unsigned max;
    unsigned inside;              /* entered, not left; places given count */
    struct loop_deferred waiting; /* sentinel of the waiters, in order */
};
/* An empty gate of @max places (at least 1). */
void loop_gate_init(struct loop_gate *g, struct loop *l, unsigned max);
/* Enters @g: true if the caller has a place now (it must loop_gate_leave()
 * once). Otherwise @d joins the waiters and false is returned; when a place
 * is free, @d's function is deferred and must call loop_gate_enter() again,
 * which then returns true. */
bool loop_gate_enter(struct loop_gate *g, struct loop_deferred *d);
/* Gives the caller's place back; the first waiter gets it. */
void loop_gate_leave(struct loop_gate *g);
/* Takes @d off the waiters, or off the loop's queue with the place it was
 * given (which passes to the next waiter); @d's function is not called.
 * Replaces loop_defer_cancel() for a @d that may wait at @g. */
void loop_gate_cancel(struct loop_gate *g, struct loop_deferred *d);
/* Places taken or given, and callers waiting. */
unsigned loop_gate_inside(const struct loop_gate *g);
unsigned loop_gate_waiting(const struct loop_gate *g);
