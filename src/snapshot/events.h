/* SPDX-License-Identifier: MIT */
/* Check records travelling from HTTP threads to the loop: one single-producer
 * ring per thread, drained by the loop, which keeps the per-app counters and
 * recent apps. Pushing never blocks or allocates after the thread's first
 * push; a full ring drops the record and counts it. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define EVENT_APP_MAX    191
#define EVENT_STORE_MAX  191
#define EVENT_CLIENT_MAX 63
/* Records one ring holds (a power of two): a thread that pushes more before
 * the loop drains (every 25 ms) loses the rest, counted. */
#define EVENTS_RING_SIZE 4096
/* Rings at most, one per producing thread for the process lifetime; the
 * records of threads past this are dropped and counted. */
#define EVENTS_MAX_RINGS 256

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
