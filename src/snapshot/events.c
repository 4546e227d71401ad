/* SPDX-License-Identifier: MIT */
/* Per-thread SPSC byte rings. A producer claims a registry slot with one
 * atomic increment on its first push and owns the ring's head; the loop owns
 * the tail. Acquire/release ordering on head and tail publishes the records.
 *
 * Head and tail count bytes and only grow; their offset in the ring is the
 * count modulo EVENTS_RING_BYTES. A record is a header followed by the three
 * names' bytes (no NULs), padded to EVENTS_RECORD_ALIGN. Every record starts
 * on that alignment, so the space left before the ring's end is either none
 * or room for a header: a record that does not fit there leaves a wrap
 * marker (a header alone) and starts at offset 0. The ring holds names of
 * their own length instead of fixed fields, so a wrapping ring touches
 * EVENTS_RING_BYTES per thread at most. */
#include "snapshot/events.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"
#include "metrics/metrics.h"

_Static_assert((EVENTS_RING_BYTES & (EVENTS_RING_BYTES - 1)) == 0,
               "a ring's size is a power of two");

#define RING_MASK ((size_t)EVENTS_RING_BYTES - 1)
#define REC_WRAP  0x1 /* header flag: the rest of the ring is unused */

struct rec_header {
    uint64_t at_ms;
    uint16_t status;
    uint8_t app_len;
    uint8_t store_len;
    uint8_t client_len;
    uint8_t flags;
    uint8_t pad[2];
};

_Static_assert(sizeof(struct rec_header) == EVENTS_RECORD_ALIGN, "a header is one alignment unit");
_Static_assert(EVENT_APP_MAX <= UINT8_MAX && EVENT_STORE_MAX <= UINT8_MAX &&
                       EVENT_CLIENT_MAX <= UINT8_MAX,
               "name lengths fit the header");
_Static_assert(EVENTS_RECORD_BYTES(EVENT_APP_MAX, EVENT_STORE_MAX, EVENT_CLIENT_MAX) * 2 <=
                       EVENTS_RING_BYTES,
               "a ring holds a wrap and the largest record");

struct ring {
    _Atomic size_t head; /* bytes written, producer-owned */
    _Atomic size_t tail; /* bytes read, consumer-owned */
    _Alignas(EVENTS_RECORD_ALIGN) unsigned char buf[EVENTS_RING_BYTES];
};

static struct ring *_Atomic rings[EVENTS_MAX_RINGS];
static _Atomic size_t rings_len;
static _Thread_local struct ring *my_ring;
static _Thread_local bool my_ring_failed;

static size_t name_len(const char *s, size_t max)
{
    return s ? strnlen(s, max) : 0;
}

/* Copies @len bytes of @s (NULL when @len is 0) to @dst; returns the byte
 * after them. */
static unsigned char *put_name(unsigned char *dst, const char *s, size_t len)
{
    if (len)
        memcpy(dst, s, len);
    return dst + len;
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
    struct rec_header h = {
            .at_ms = at_ms,
            .status = (uint16_t)status,
            .app_len = (uint8_t)name_len(app, EVENT_APP_MAX),
            .store_len = (uint8_t)name_len(store, EVENT_STORE_MAX),
            .client_len = (uint8_t)name_len(client, EVENT_CLIENT_MAX),
    };
    size_t need = EVENTS_RECORD_BYTES(h.app_len, h.store_len, h.client_len);
    size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    size_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    size_t off = head & RING_MASK;
    size_t skip = EVENTS_RING_BYTES - off; /* a wrap marker's bytes, if one is needed */
    if (need <= skip)
        skip = 0;
    if (EVENTS_RING_BYTES - (head - tail) < skip + need) {
        metrics_inc(METRICS_CHECK_EVENTS_DROPPED);
        return;
    }
    if (skip) {
        struct rec_header wrap = {.flags = REC_WRAP};
        memcpy(r->buf + off, &wrap, sizeof(wrap));
        off = 0;
    }
    unsigned char *p = r->buf + off;
    memcpy(p, &h, sizeof(h));
    p = put_name(p + sizeof(h), app, h.app_len);
    p = put_name(p, store, h.store_len);
    put_name(p, client, h.client_len);
    atomic_store_explicit(&r->head, head + skip + need, memory_order_release);
}

/* Copies @len bytes at @src into @dst as a string; returns the bytes after. */
static const unsigned char *take_name(char *dst, const unsigned char *src, size_t len)
{
    memcpy(dst, src, len);
    dst[len] = '\0';
    return src + len;
}

size_t events_drain(void (*fn)(const struct check_event *e, void *arg), void *arg)
{
    size_t total = 0;
    size_t n = atomic_load_explicit(&rings_len, memory_order_acquire);
    if (n > EVENTS_MAX_RINGS)
        n = EVENTS_MAX_RINGS;
    struct check_event e;
    for (size_t i = 0; i < n; i++) {
        struct ring *r = atomic_load_explicit(&rings[i], memory_order_acquire);
        if (r == NULL)
            continue; /* slot claimed, ring not stored yet */
        size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
        size_t head = atomic_load_explicit(&r->head, memory_order_acquire);
        while (tail != head) {
            size_t off = tail & RING_MASK;
            struct rec_header h;
            memcpy(&h, r->buf + off, sizeof(h));
            if (h.flags & REC_WRAP) {
                tail += EVENTS_RING_BYTES - off;
                continue;
            }
            const unsigned char *p = r->buf + off + sizeof(h);
            e.at_ms = h.at_ms;
            e.status = h.status;
            p = take_name(e.app, p, h.app_len);
            p = take_name(e.store, p, h.store_len);
            take_name(e.client, p, h.client_len);
            tail += EVENTS_RECORD_BYTES(h.app_len, h.store_len, h.client_len);
            fn(&e, arg);
            total++;
        }
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
