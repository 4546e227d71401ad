/* SPDX-License-Identifier: MIT */
/* The event loop (libuv) that owns all mutable daemon state, and the command
 * queue through which other threads ask it to change that state. The queue's
 * mutex is one of the daemon's two locks. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct loop;

enum loop_cmd_kind {
    LOOP_CMD_THROTTLE_APP,
    LOOP_CMD_UNTHROTTLE_APP,
    LOOP_CMD_SKIP_HOST,
    LOOP_CMD_RECOVER_HOST,
};

/* A request from an HTTP thread. Filled by the submitter, answered by the
 * loop (status is an HTTP code, msg the error text when not 200). */
struct loop_cmd {
    enum loop_cmd_kind kind;
    char name[256]; /* app key ("app" or "app/store") or host name */
    bool has_ttl;
    int64_t ttl_min; /* minutes */
    bool has_ratio;
    double ratio;
    int status;
    char msg[256];
};

typedef void loop_cmd_fn(struct loop_cmd *cmd, void *arg);

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
 * The handler must eventually call loop_cmd_finish() exactly once. */
void loop_set_cmd_handler(struct loop *l, loop_cmd_fn *fn, void *arg);
/* Queues a copy of @cmd, wakes the loop and waits at most @timeout_ms for the
 * answer, which is copied back into @cmd (status 500 "timed out ..." if none
 * came). Any thread but the loop's. */
void loop_submit_wait(struct loop *l, struct loop_cmd *cmd, uint32_t timeout_ms);
/* Completes @cmd with @status and @msg (may be NULL). Loop thread. */
void loop_cmd_finish(struct loop *l, struct loop_cmd *cmd, int status, const char *msg);

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
