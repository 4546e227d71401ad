/* SPDX-License-Identifier: MIT */
/* Connection slots for the request-time bound (see conn_table.h). A slot's
 * state moves FREE -> CLAIMING -> LIVE <-> REAPING -> ... -> FREE; only the
 * holder of CLAIMING or REAPING writes its fd. */
#include "http/conn_table.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "core/xalloc.h"

enum slot_state { SLOT_FREE, SLOT_CLAIMING, SLOT_LIVE, SLOT_REAPING };
_Static_assert(SLOT_FREE == 0, "a zeroed slot is free");
enum slot_phase { PHASE_WAITING, PHASE_BUSY, PHASE_REAPED };

struct conn_slot {
    _Atomic int state; /* enum slot_state */
    _Atomic int phase; /* enum slot_phase */
    _Atomic uint64_t since_ms;
    _Atomic int fd;
    /* The connection's verdict on its client certificate (enum
     * conn_tls_verdict), written and read by the connection's own thread. */
    _Atomic int tls_verdict;
    /* The client's address as text, formatted at the connection's first
     * request and read by its later ones: the connection's own thread. */
    char peer[CONN_PEER_SIZE];
};

struct conn_table {
    size_t size;
    _Atomic size_t live;
    _Atomic size_t hint; /* where the next claim starts looking */
    struct conn_slot *slots;
};

struct conn_table *conn_table_new(size_t size)
{
    struct conn_table *t = xcalloc(1, sizeof(*t));
    t->size = size > 0 ? size : 1;
    /* All zero is all free (SLOT_FREE): the slots are not written here, so
     * an idle daemon keeps the table's pages (96 KB at 4096 connections)
     * unmapped until connections use them. A slot's fd means something
     * only while the slot is held. */
    t->slots = xcalloc(t->size, sizeof(*t->slots));
    return t;
}

void conn_table_free(struct conn_table *t)
{
    if (t == NULL)
        return;
    free(t->slots);
    free(t);
}

struct conn_slot *conn_table_claim(struct conn_table *t, int fd, uint64_t now_ms)
{
    size_t start = atomic_fetch_add(&t->hint, 1) % t->size;
    for (size_t i = 0; i < t->size; i++) {
        struct conn_slot *s = &t->slots[(start + i) % t->size];
        int expected = SLOT_FREE;
        if (!atomic_compare_exchange_strong(&s->state, &expected, SLOT_CLAIMING))
            continue;
        atomic_store(&s->fd, fd);
        atomic_store(&s->phase, PHASE_WAITING);
        atomic_store(&s->since_ms, now_ms);
        atomic_store_explicit(&s->tls_verdict, CONN_TLS_UNKNOWN, memory_order_relaxed);
        s->peer[0] = '\0';
        atomic_store(&s->state, SLOT_LIVE);
        atomic_fetch_add(&t->live, 1);
        return s;
    }
    return NULL;
}

void conn_table_release(struct conn_table *t, struct conn_slot *s)
{
    if (s == NULL)
        return;
    for (;;) {
        int expected = SLOT_LIVE;
        if (atomic_compare_exchange_strong(&s->state, &expected, SLOT_CLAIMING))
            break;
        /* A reaper holds it for one shutdown(2): a few microseconds. */
        sched_yield();
    }
    atomic_store(&s->fd, -1);
    atomic_store(&s->state, SLOT_FREE);
    atomic_fetch_sub(&t->live, 1);
}

size_t conn_table_live(const struct conn_table *t)
{
    return atomic_load(&t->live);
}

void conn_slot_busy(struct conn_slot *s)
{
    atomic_store_explicit(&s->phase, PHASE_BUSY, memory_order_relaxed);
}

void conn_slot_waiting(struct conn_slot *s, uint64_t now_ms)
{
    atomic_store_explicit(&s->since_ms, now_ms, memory_order_relaxed);
    atomic_store_explicit(&s->phase, PHASE_WAITING, memory_order_release);
}

static bool is_overdue(const struct conn_slot *s, uint64_t now_ms, uint64_t limit_ms)
{
    if (atomic_load_explicit(&s->phase, memory_order_acquire) != PHASE_WAITING)
        return false;
    uint64_t since = atomic_load_explicit(&s->since_ms, memory_order_relaxed);
    return now_ms > since && now_ms - since > limit_ms;
}

size_t conn_table_reap(struct conn_table *t, uint64_t now_ms, uint64_t limit_ms,
                       conn_table_reap_fn *fn, void *arg)
{
    size_t n = 0;
    for (size_t i = 0; i < t->size; i++) {
        struct conn_slot *s = &t->slots[i];
        if (atomic_load(&s->state) != SLOT_LIVE || !is_overdue(s, now_ms, limit_ms))
            continue;
        int expected = SLOT_LIVE;
        if (!atomic_compare_exchange_strong(&s->state, &expected, SLOT_REAPING))
            continue;
        /* Holding the slot, the socket cannot be closed under us. */
        if (is_overdue(s, now_ms, limit_ms)) {
            atomic_store(&s->phase, PHASE_REAPED);
            fn(atomic_load(&s->fd), arg);
            n++;
        }
        atomic_store(&s->state, SLOT_LIVE);
    }
    return n;
}

enum conn_tls_verdict conn_slot_tls_verdict(const struct conn_slot *s)
{
    return (enum conn_tls_verdict)atomic_load_explicit(&s->tls_verdict, memory_order_relaxed);
}

void conn_slot_set_tls_verdict(struct conn_slot *s, enum conn_tls_verdict v)
{
    atomic_store_explicit(&s->tls_verdict, (int)v, memory_order_relaxed);
}

char *conn_slot_peer(struct conn_slot *s)
{
    return s->peer;
}
