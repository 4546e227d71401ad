/* SPDX-License-Identifier: MIT */
/* Check records travelling from HTTP threads to the loop: one single-producer
 * byte ring per thread, drained by the loop, which keeps the per-app counters
 * and recent apps. Pushing never blocks or allocates after the thread's first
 * push; a full ring drops the record and counts it. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define EVENT_APP_MAX    191
#define EVENT_STORE_MAX  191
#define EVENT_CLIENT_MAX 63
/* Bytes of one ring (a power of two). A record takes a 16-byte header plus
 * its three names, padded to 16 bytes: EVENTS_RECORD_BYTES. Typical names
 * ("gh-ost", "main", "10.0.0.1") make 48 bytes, 5461 records a ring; names
 * at their maximum make 464 bytes, 564 records. A thread that pushes more
 * before the loop drains (every 25 ms) loses the rest, counted. */
#define EVENTS_RING_BYTES   ((size_t)256 * 1024)
#define EVENTS_RECORD_ALIGN 16
#define EVENTS_RECORD_BYTES(app_len, store_len, client_len)                                        \
    (EVENTS_RECORD_ALIGN +                                                                         \
     (((size_t)(app_len) + (size_t)(store_len) + (size_t)(client_len) + EVENTS_RECORD_ALIGN - 1) & \
      ~(size_t)(EVENTS_RECORD_ALIGN - 1)))
/* Rings at most, one per producing thread for the process lifetime; the
 * records of threads past this are dropped and counted. */
#define EVENTS_MAX_RINGS 256

/* A record as the drain callback sees it, decoded on the drainer's stack. */
struct check_event {
    uint64_t at_ms;
    uint16_t status;
    char app[EVENT_APP_MAX + 1];     /* truncated if longer */
    char store[EVENT_STORE_MAX + 1]; /* mysql cluster name */
    char client[EVENT_CLIENT_MAX + 1];
};

/* Queues a copy of a check record (strings are truncated to fit). Any thread. */
void events_push(uint64_t at_ms, int status, const char *app, const char *store,
                 const char *client);
/* Calls @fn for every queued record, oldest first per thread. Loop thread. */
size_t events_drain(void (*fn)(const struct check_event *e, void *arg), void *arg);
/* Frees all rings. Main thread, after every producer stopped. */
void events_shutdown(void);
