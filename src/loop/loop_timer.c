/* SPDX-License-Identifier: MIT */
/* Heap timers: see loop_timer.h. */
#include "loop/loop_timer.h"

#include <stdlib.h>

#include "core/xalloc.h"
#include "loop/loop.h"

uv_timer_t *loop_timer_new(struct loop *l, void *data)
{
    uv_timer_t *h = xcalloc(1, sizeof(*h));
    uv_timer_init(loop_uv(l), h);
    h->data = data;
    return h;
}

uv_timer_t *loop_timer_start(struct loop *l, uv_timer_cb cb, void *data, uint64_t first_ms,
                             uint64_t every_ms)
{
    uv_timer_t *h = loop_timer_new(l, data);
    uv_timer_start(h, cb, first_ms, every_ms);
    return h;
}

static void on_closed(uv_handle_t *h)
{
    free(h);
}

void loop_timer_close(uv_timer_t **h)
{
    if (*h == NULL)
        return;
    uv_timer_stop(*h);
    uv_close((uv_handle_t *)*h, on_closed);
    *h = NULL;
}
