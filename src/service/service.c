/* SPDX-License-Identifier: MIT */
/* Notifications to the service manager (service/notify.h). The watchdog
 * pings come from a timer on the loop, never from another thread: the point
 * of the watchdog is that a loop which stops turning stops them. A
 * notification is one datagram on a local socket, which the service manager
 * reads at once.
 * Loop thread. */
#include "service/service.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/xalloc.h"
#include "log/log.h"
#include "loop/loop_timer.h"
#include "service/notify.h"

struct service {
    uv_timer_t *watchdog; /* NULL without a watchdog */
    unsigned watchdog_ms;
    bool ready;    /* READY=1 was sent */
    bool stopping; /* STOPPING=1 was sent */
    bool failing;  /* the last notification failed (logged once) */
    char status[SERVICE_STATUS_MAX];
};

/* Sends @msg; logs the first failure of a run of failures, and the end of
 * it. */
static void notify(struct service *s, const char *msg)
{
    int rc = notify_send(msg);
    if (rc < 0 && !s->failing)
        log_warn("service: cannot notify the service manager (NOTIFY_SOCKET): %s", strerror(-rc));
    else if (rc >= 0 && s->failing)
        log_info("service: notifying the service manager works again");
    s->failing = rc < 0;
}

static void on_watchdog(uv_timer_t *h)
{
    notify(h->data, "WATCHDOG=1");
}

struct service *service_new(struct loop *loop)
{
    struct service *s = xcalloc(1, sizeof(*s));
    uint64_t usec = 0;
    int rc = notify_watchdog_usec(&usec);
    if (rc < 0)
        log_warn("service: WATCHDOG_USEC: %s; no watchdog pings", strerror(-rc));
    if (rc <= 0 || usec == 0)
        return s;
    /* Half the interval, as sd_watchdog_enabled(3) advises; at least 1 ms. */
    uint64_t ms = usec / 2000;
    s->watchdog_ms = ms == 0 ? 1 : ms > UINT32_MAX ? UINT32_MAX : (unsigned)ms;
    /* One now: starting up (a raft log to load, say) takes its own time. */
    notify(s, "WATCHDOG=1");
    s->watchdog = loop_timer_start(loop, on_watchdog, s, s->watchdog_ms, s->watchdog_ms);
    log_info("service: watchdog: %llu ms; a ping from the event loop every %u ms",
             (unsigned long long)(usec / 1000), s->watchdog_ms);
    return s;
}

void service_free(struct service *s)
{
    if (s == NULL)
        return;
    loop_timer_close(&s->watchdog);
    free(s);
}

unsigned service_watchdog_ms(const struct service *s)
{
    return s->watchdog_ms;
}

/* The STATUS= text for @st into @buf. */
static void status_text(char *buf, size_t size, const struct service_state *st)
{
    if (!st->http_up || !st->role_known) {
        snprintf(buf, size, "starting (%s): %s; %zu cluster(s)", st->mode,
                 st->http_up ? "HTTP is up, learning whether this node leads"
                             : "opening the HTTP listener",
                 st->clusters);
    } else if (st->is_leader) {
        snprintf(buf, size, "leader (%s); %zu cluster(s), %zu host(s) probed", st->mode,
                 st->clusters, st->hosts);
    } else {
        snprintf(buf, size, "not leading (%s, state %s, leader %s); %zu cluster(s)", st->mode,
                 st->state, st->leader[0] ? st->leader : "unknown", st->clusters);
    }
}

void service_update(struct service *s, const struct service_state *st)
{
    if (s->stopping)
        return;
    char status[SERVICE_STATUS_MAX];
    status_text(status, sizeof(status), st);
    bool ready = !s->ready && st->http_up && st->role_known;
    if (!ready && strcmp(status, s->status) == 0)
        return;
    memcpy(s->status, status, sizeof(status));
    char msg[SERVICE_STATUS_MAX + 32];
    snprintf(msg, sizeof(msg), "%sSTATUS=%s", ready ? "READY=1\n" : "", status);
    notify(s, msg);
    if (ready) {
        s->ready = true;
        log_info("service: ready: %s", status);
    }
}

void service_reloading(struct service *s)
{
    if (s->stopping || !s->ready)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    char msg[96];
    snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000u);
    notify(s, msg);
}

void service_reloaded(struct service *s)
{
    if (s->stopping || !s->ready)
        return;
    char msg[SERVICE_STATUS_MAX + 32];
    snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s", s->status);
    notify(s, msg);
}

void service_stopping(struct service *s)
{
    if (s->stopping)
        return;
    s->stopping = true;
    snprintf(s->status, sizeof(s->status), "stopping");
    notify(s, "STOPPING=1\nSTATUS=stopping");
}
