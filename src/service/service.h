/* SPDX-License-Identifier: MIT */
/* What the service manager (systemd, Type=notify) is told, through its
 * notification protocol (service/notify.h): READY=1 once the HTTP listener
 * is up and the node knows whether it leads, STATUS= lines saying what it does,
 * RELOADING=1 and READY=1 around a reload, STOPPING=1 at shutdown, and
 * WATCHDOG=1 from a timer on the loop, so a stalled loop stops the pings.
 * Without NOTIFY_SOCKET every call does nothing. Loop thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct loop;
struct service;

/* What the node does, as app.c sees it. */
struct service_state {
    bool http_up;       /* the HTTP listener accepts connections */
    bool role_known;    /* the node knows whether it leads (struct leader_role) */
    bool is_leader;     /* /leader-check answers 200 */
    const char *mode;   /* leadership mode: "raft", "single-node", "mysql-backend", ... */
    const char *state;  /* as /consensus/state shows it */
    const char *leader; /* the leader's id, "" when none is known */
    size_t clusters;    /* configured clusters */
    size_t hosts;       /* hosts in the clusters' inventories */
};

/* Longest STATUS= text; longer ones are cut. */
#define SERVICE_STATUS_MAX 256

/* Starts the watchdog pings when the service manager asks for them
 * (WATCHDOG_USEC, and WATCHDOG_PID naming this process if set): one at once
 * and then every half of the interval, from a timer on @loop. Main thread,
 * before the loop runs. Never fails; without a watchdog there is no timer. */
struct service *service_new(struct loop *loop);
/* Stops the pings; NULL is fine. Main thread, before loop_free(). */
void service_free(struct service *s);
/* Watchdog ping interval in ms, 0 when there is no watchdog. */
unsigned service_watchdog_ms(const struct service *s);

/* Sends STATUS= when its text changed, and READY=1 with it the first time
 * @st has http_up and role_known. Loop thread. */
void service_update(struct service *s, const struct service_state *st);
/* A reload begins: RELOADING=1 (with MONOTONIC_USEC, as systemd asks).
 * Nothing before READY=1 was sent. Loop thread. */
void service_reloading(struct service *s);
/* The reload is over: READY=1 with the current STATUS=; nothing before the
 * first READY=1. Loop thread. */
void service_reloaded(struct service *s);
/* Shutdown begins: STOPPING=1; later updates are not sent. Loop thread. */
void service_stopping(struct service *s);
