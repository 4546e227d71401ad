/* SPDX-License-Identifier: MIT */
/* Per-thread SPSC rings. A producer claims a registry slot with one atomic
 * increment on its first push and owns the ring's head; the loop owns the
 * tail. Acquire/release ordering on head and tail publishes the records. */
#include "snapshot/events.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"
#include "metrics/metrics.h"

_Static_assert((EVENTS_RING_SIZE & (EVENTS_RING_SIZE - 1)) == 0, "a ring's size is a power of two");

struct ring {
    _Atomic size_t head; /* next write, producer-owned */
    _Atomic size_t tail; /* next read, consumer-owned */
    struct check_event ev[EVENTS_RING_SIZE];
};

static struct ring *_Atomic rings[EVENTS_MAX_RINGS];
static _Atomic size_t rings_len;
static _Thread_local struct ring *my_ring;
static _Thread_local bool my_ring_failed;

static void copy_trunc(char *dst, size_t size, const char *src)
{
    size_t n = src ? strnlen(src, size - 1) : 0;
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

static struct ring *ring_get(void)
{
    if (my_ring != NULL || my_ring_failed)
        return my_ring;
    size_t idx = atomic_fetch_add(&rings_len, 1);
    if (idx >= EVENTS_MAX_RINGS) {
        my_ring_failed = true;
        return NULL;
    }
    struct ring *r = xcalloc(1, sizeof(*r));
    atomic_store_explicit(&rings[idx], r, memory_order_release);
    my_ring = r;
    return r;
}

void events_push(uint64_t at_ms, int status, const char *app, const char *store, const char *client)
{
    struct ring *r = ring_get();
    if (r == NULL) {
        metrics_inc(METRICS_CHECK_EVENTS_DROPPED);
        return;
    }
    size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    size_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    if (head - tail >= EVENTS_RING_SIZE) {
        metrics_inc(METRICS_CHECK_EVENTS_DROPPED);
        return;
    }
    struct check_event *e = &r->ev[head & (EVENTS_RING_SIZE - 1)];
    e->at_ms = at_ms;
    e->status = (uint16_t)status;
    copy_trunc(e->app, sizeof(e->app), app);
    copy_trunc(e->store, sizeof(e->store), store);
    copy_trunc(e->client, sizeof(e->client), client);
    atomic_store_explicit(&r->head, head + 1, memory_order_release);
}

size_t events_drain(void (*fn)(const struct check_event *e, void *arg), void *arg)
{
    size_t total = 0;
    size_t n = atomic_load_explicit(&rings_len, memory_order_acquire);
    if (n > EVENTS_MAX_RINGS)
        n = EVENTS_MAX_RINGS;
    for (size_t i = 0; i < n; i++) {
        struct ring *r = atomic_load_explicit(&rings[i], memory_order_acquire);
        if (r == NULL)
            continue; /* slot claimed, ring not stored yet */
        size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
        size_t head = atomic_load_explicit(&r->head, memory_order_acquire);
        for (; tail != head; tail++, total++)
            fn(&r->ev[tail & (EVENTS_RING_SIZE - 1)], arg);
        atomic_store_explicit(&r->tail, tail, memory_order_release);
    }
    return total;
}

void events_shutdown(void)
{
    size_t n = atomic_load(&rings_len);
    if (n > EVENTS_MAX_RINGS)
        n = EVENTS_MAX_RINGS;
    for (size_t i = 0; i < n; i++) {
        free(atomic_load(&rings[i]));
        atomic_store(&rings[i], NULL);
    }
    atomic_store(&rings_len, 0);
}
