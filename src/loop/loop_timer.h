/* SPDX-License-Identifier: MIT */
/* Heap-allocated libuv timers on the daemon's loop: creating one and closing
 * it (stop, close, free once libuv lets go) in one place. Only modules that
 * drive libuv themselves include this header, which is why it may name
 * uv_timer_t (the other loop headers keep libuv's types out). Loop thread. */
#pragma once

#include <stdint.h>
#include <uv.h>

struct loop;

/* A new, stopped timer on @l whose data is @data. */
uv_timer_t *loop_timer_new(struct loop *l, void *data);
/* A new timer on @l calling @cb with @data after @first_ms, then every
 * @every_ms (0: once). */
uv_timer_t *loop_timer_start(struct loop *l, uv_timer_cb cb, void *data, uint64_t first_ms,
                             uint64_t every_ms);
/* Stops and closes *@h and frees it once libuv is done with it; sets *@h to
 * NULL. A NULL *@h is fine. */
void loop_timer_close(uv_timer_t **h);
