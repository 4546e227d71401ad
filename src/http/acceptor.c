/* SPDX-License-Identifier: MIT */
/* The listening socket and its accepting thread: poll() on the socket and
 * on an eventfd that stops the thread, accept4() until the queue is empty,
 * each connection to the callback. */
#include "http/acceptor.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/xalloc.h"
#include "log/log.h"

/* Connections accepted in one go before the stop descriptor is looked at
 * again. */
#define ACCEPT_BATCH 64u
/* At most one log line this often about connections the system refused. */
#define REFUSED_REPORT_MS 60000u

struct acceptor {
    int fd;      /* listening */
    int wake_fd; /* eventfd: readable once the thread must stop */
    uint16_t port;
    acceptor_fn *fn;
    acceptor_room_fn *room;
    void *arg;
    pthread_t thread;
    bool started;
    /* The accepting thread's own. */
    uint64_t report_at; /* no log line about failures before this */
    uint64_t failures;  /* failed accept4() calls since the last line */
    int last_failure;   /* errno of the last one */
};

/* What accept_some() found. */
enum accept_state { ACCEPT_EMPTY, ACCEPT_MORE, ACCEPT_PAUSE, ACCEPT_RETRY, ACCEPT_STOP };

/* Resolves @address with @port into @ss (its first address). */
static int resolve(const char *address, uint16_t port, struct sockaddr_storage *ss, socklen_t *len,
                   struct err *err)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(address, NULL, &hints, &res);
    if (rc != 0)
        return err_set(err, -EINVAL, "http: ListenAddress %s: cannot resolve it: %s", address,
                       gai_strerror(rc));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)(void *)ss)->sin_port = htons(port);
    else
        ((struct sockaddr_in6 *)(void *)ss)->sin6_port = htons(port);
    return 0;
}

/* Every address: IPv6 with IPv4 clients mapped onto it, or IPv4 alone when
 * the kernel has no IPv6. */
static int any_address(uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        int off = 0;
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)(void *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_any;
        a->sin6_port = htons(port);
        *len = sizeof(*a);
        return fd;
    }
    if (errno != EAFNOSUPPORT)
        return -1;
    struct sockaddr_in *a = (struct sockaddr_in *)(void *)ss;
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_ANY);
    a->sin_port = htons(port);
    *len = sizeof(*a);
    return socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

/* The listening socket for @address, bound and listening; -1 with @err. */
static int listen_on(const char *address, uint16_t port, unsigned backlog, struct err *err)
{
    struct sockaddr_storage ss = {0};
    socklen_t len = 0;
    int fd = -1;
    if (address != NULL) {
        if (resolve(address, port, &ss, &len, err) < 0)
            return -1;
        fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    } else {
        fd = any_address(port, &ss, &len);
    }
    int on = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0 ||
        bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, (int)backlog) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        err_set(err, -e, "http: cannot listen on %s%s%sport %u: %s",
                address != NULL ? "address " : "", address != NULL ? address : "",
                address != NULL ? ", " : "", (unsigned)port, strerror(e));
        return -1;
    }
    return fd;
}

_Static_assert(offsetof(struct sockaddr_in, sin_port) == offsetof(struct sockaddr_in6, sin6_port),
               "IPv4 and IPv6 socket addresses keep the port at the same place");

/* The port @fd is bound to (@port when the system does not say). */
static uint16_t bound_port(int fd, uint16_t port)
{
    struct sockaddr_in6 a; /* large enough for either family */
    memset(&a, 0, sizeof(a));
    socklen_t len = sizeof(a);
    if (getsockname(fd, (struct sockaddr *)&a, &len) < 0)
        return port;
    return ntohs(a.sin6_port);
}

struct acceptor *acceptor_new(const char *address, uint16_t port, unsigned backlog, struct err *err)
{
    if (address != NULL && address[0] == '\0')
        address = NULL;
    int fd = listen_on(address, port, backlog, err);
    if (fd < 0)
        return NULL;
    int wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake < 0) {
        err_set(err, -errno, "http: cannot create the listener's wake-up descriptor: %s",
                strerror(errno));
        close(fd);
        return NULL;
    }
    struct acceptor *a = xcalloc(1, sizeof(*a));
    a->fd = fd;
    a->wake_fd = wake;
    a->port = bound_port(fd, port);
    return a;
}

uint16_t acceptor_port(const struct acceptor *a)
{
    return a->port;
}

/* Counts a failed accept4() and logs, at most once a minute, how many. */
static void note_failure(struct acceptor *a, int e)
{
    a->failures++;
    a->last_failure = e;
    uint64_t now = clock_mono_ms();
    if (now < a->report_at)
        return;
    log_warn(
            "http: cannot accept connections: %s; they wait in the kernel's queue, tried every %u ms (%llu failed tries since the last report)",
            strerror(a->last_failure), ACCEPTOR_RETRY_MS, (unsigned long long)a->failures);
    a->failures = 0;
    a->report_at = now + REFUSED_REPORT_MS;
}

/* Accepts up to ACCEPT_BATCH connections and hands each to the callback. */
static enum accept_state accept_some(struct acceptor *a)
{
    for (unsigned i = 0; i < ACCEPT_BATCH; i++) {
        if (!a->room(a->arg))
            return ACCEPT_PAUSE;
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int fd = accept4(a->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            a->fn(fd, (struct sockaddr *)&ss, len, a->arg);
            continue;
        }
        switch (errno) {
        case EAGAIN:
            return ACCEPT_EMPTY;
        case EINTR:
        case ECONNABORTED: /* the client gave up while queued */
        case EPROTO:
        case EPERM: /* a firewall rule */
        case ENETDOWN:
        case ENOPROTOOPT:
        case EHOSTDOWN:
        case ENONET:
        case EHOSTUNREACH:
        case EOPNOTSUPP:
        case ENETUNREACH:
            continue; /* that connection's problem, not the socket's */
        case EINVAL:
            return ACCEPT_STOP; /* the socket no longer listens */
        default:                /* EMFILE, ENFILE, ENOBUFS, ENOMEM */
            note_failure(a, errno);
            return ACCEPT_RETRY;
        }
    }
    return ACCEPT_MORE;
}

static void *acceptor_main(void *arg)
{
    struct acceptor *a = arg;
    int wait_ms = -1; /* poll()'s timeout: -1 until the socket is ready */
    for (;;) {
        struct pollfd pf[2] = {{.fd = a->wake_fd, .events = POLLIN},
                               {.fd = a->fd, .events = POLLIN}};
        /* While paused, only the stop descriptor is watched. */
        nfds_t n = wait_ms < 0 ? 2 : 1;
        if (poll(pf, n, wait_ms) < 0) {
            if (errno != EINTR) { /* ENOMEM: as when accept4() lacks memory */
                note_failure(a, errno);
                struct timespec ts = {0, (long)ACCEPTOR_RETRY_MS * 1000000L};
                nanosleep(&ts, NULL);
            }
            continue;
        }
        if (pf[0].revents != 0)
            return NULL;
        if (wait_ms < 0 && pf[1].revents == 0)
            continue;
        switch (accept_some(a)) {
        case ACCEPT_EMPTY:
        case ACCEPT_MORE:
            wait_ms = -1;
            break;
        case ACCEPT_PAUSE:
            wait_ms = (int)ACCEPTOR_PAUSE_MS;
            break;
        case ACCEPT_RETRY:
            wait_ms = (int)ACCEPTOR_RETRY_MS;
            break;
        case ACCEPT_STOP:
            log_error("http: the listening socket stopped listening");
            return NULL;
        }
    }
}

int acceptor_start(struct acceptor *a, acceptor_fn *fn, acceptor_room_fn *room, void *arg,
                   struct err *err)
{
    a->fn = fn;
    a->room = room;
    a->arg = arg;
    int rc = pthread_create(&a->thread, NULL, acceptor_main, a);
    if (rc != 0)
        return err_set(err, -rc, "http: cannot start the listener thread: %s", strerror(rc));
    a->started = true;
    return 0;
}

void acceptor_free(struct acceptor *a)
{
    if (a == NULL)
        return;
    if (a->started) {
        uint64_t one = 1;
        while (write(a->wake_fd, &one, sizeof(one)) < 0 && errno == EINTR)
            ;
        pthread_join(a->thread, NULL);
    }
    close(a->wake_fd);
    close(a->fd);
    free(a);
}
