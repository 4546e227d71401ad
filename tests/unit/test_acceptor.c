/* SPDX-License-Identifier: MIT */
/* Unit tests for http/acceptor on loopback: IPv4 and IPv6 clients on the
 * default dual-stack socket, one address only with ListenAddress, clear
 * errors for a port in use and a name that does not resolve, no room
 * (connections wait until there is), and a process out of descriptors: the thread
 * waits instead of spinning, and accepts the queued connections once
 * descriptors are free again. */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/clock.h"
#include "http/acceptor.h"

#define WAIT_MS     5000u
#define CLIENTS_MAX 16

struct seen {
    _Atomic int n;
    int families[CLIENTS_MAX];
    bool v4_mapped[CLIENTS_MAX];
    _Atomic bool full; /* no room for a connection */
    _Atomic int asked; /* times the room was asked for */
};

static bool on_room(void *arg)
{
    struct seen *s = arg;
    atomic_fetch_add(&s->asked, 1);
    return !atomic_load(&s->full);
}

static void on_accept(int fd, const struct sockaddr *addr, socklen_t addrlen, void *arg)
{
    struct seen *s = arg;
    int i = atomic_load(&s->n);
    if (i < CLIENTS_MAX) {
        s->families[i] = addr->sa_family;
        if (addr->sa_family == AF_INET6 && addrlen >= sizeof(struct sockaddr_in6)) {
            const struct sockaddr_in6 *a6 = (const void *)addr;
            s->v4_mapped[i] = IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr);
        }
    }
    close(fd);
    atomic_store(&s->n, i + 1);
}

/* Waits until @s saw @n connections; false after WAIT_MS. */
static bool wait_seen(struct seen *s, int n)
{
    uint64_t deadline = clock_mono_ms() + WAIT_MS;
    while (atomic_load(&s->n) < n) {
        if (clock_mono_ms() > deadline)
            return false;
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return true;
}

/* A client socket connected to @port on @family's loopback; -1 if refused. */
static int connect_to(int family, uint16_t port)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_storage ss = {0};
    socklen_t len;
    if (family == AF_INET) {
        struct sockaddr_in *a = (void *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof(*a);
    } else {
        struct sockaddr_in6 *a = (void *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        a->sin6_addr = in6addr_loopback;
        len = sizeof(*a);
    }
    if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void test_dual_stack(void **state)
{
    (void)state;
    struct err err = {0};
    struct acceptor *a = acceptor_new(NULL, 0, 16, &err);
    assert_non_null(a);
    uint16_t port = acceptor_port(a);
    assert_true(port != 0);
    struct seen s = {0};
    assert_int_equal(acceptor_start(a, on_accept, on_room, &s, &err), 0);
    int c4 = connect_to(AF_INET, port);
    assert_true(c4 >= 0);
    assert_true(wait_seen(&s, 1));
    int c6 = connect_to(AF_INET6, port);
    assert_true(c6 >= 0);
    assert_true(wait_seen(&s, 2));
    /* One IPv6 socket: the IPv4 client comes as a mapped address. */
    assert_int_equal(s.families[0], AF_INET6);
    assert_true(s.v4_mapped[0]);
    assert_int_equal(s.families[1], AF_INET6);
    assert_false(s.v4_mapped[1]);
    close(c4);
    close(c6);
    acceptor_free(a);
}

static void test_one_address(void **state)
{
    (void)state;
    struct err err = {0};
    struct acceptor *a = acceptor_new("127.0.0.1", 0, 16, &err);
    assert_non_null(a);
    uint16_t port = acceptor_port(a);
    struct seen s = {0};
    assert_int_equal(acceptor_start(a, on_accept, on_room, &s, &err), 0);
    int c6 = connect_to(AF_INET6, port);
    assert_int_equal(c6, -1); /* nothing listens on ::1 */
    int c4 = connect_to(AF_INET, port);
    assert_true(c4 >= 0);
    assert_true(wait_seen(&s, 1));
    assert_int_equal(s.families[0], AF_INET);
    close(c4);
    acceptor_free(a);
    acceptor_free(NULL);
}

static void test_errors(void **state)
{
    (void)state;
    struct err err = {0};
    struct acceptor *a = acceptor_new("127.0.0.1", 0, 16, &err);
    assert_non_null(a);
    uint16_t port = acceptor_port(a);
    /* The port is taken (never started: nothing accepted, freed all the same). */
    assert_null(acceptor_new("127.0.0.1", port, 16, &err));
    assert_int_equal(err.code, -EADDRINUSE);
    char want[128];
    snprintf(want, sizeof(want), "http: cannot listen on address 127.0.0.1, port %u: %s",
             (unsigned)port, strerror(EADDRINUSE));
    assert_string_equal(err.msg, want);
    assert_null(acceptor_new(NULL, port, 16, &err));
    snprintf(want, sizeof(want), "http: cannot listen on port %u: %s", (unsigned)port,
             strerror(EADDRINUSE));
    assert_string_equal(err.msg, want);
    acceptor_free(a);
    assert_null(acceptor_new("no-such-host.invalid", 0, 16, &err));
    assert_non_null(strstr(err.msg, "http: ListenAddress no-such-host.invalid: cannot resolve it"));
    /* A documentation address (RFC 5737) is not local. */
    assert_null(acceptor_new("192.0.2.1", 0, 16, &err));
    assert_int_equal(err.code, -EADDRNOTAVAIL);
}

static void test_no_room(void **state)
{
    (void)state;
    struct err err = {0};
    struct acceptor *a = acceptor_new("127.0.0.1", 0, 16, &err);
    assert_non_null(a);
    struct seen s = {.full = true};
    assert_int_equal(acceptor_start(a, on_accept, on_room, &s, &err), 0);
    int c[8];
    for (int i = 0; i < 8; i++) {
        c[i] = connect_to(AF_INET, acceptor_port(a));
        assert_true(c[i] >= 0); /* the kernel's queue takes them */
    }
    /* Asked again every ACCEPTOR_PAUSE_MS, and nothing accepted meanwhile. */
    uint64_t deadline = clock_mono_ms() + WAIT_MS;
    while (atomic_load(&s.asked) < 20 && clock_mono_ms() < deadline) {
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_true(atomic_load(&s.asked) >= 20);
    assert_int_equal(atomic_load(&s.n), 0);
    atomic_store(&s.full, false);
    assert_true(wait_seen(&s, 8));
    for (int i = 0; i < 8; i++)
        close(c[i]);
    acceptor_free(a);
}

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Out of descriptors, accept4() fails while connections wait: the thread
 * must retry every ACCEPTOR_RETRY_MS, not spin on a socket that stays
 * readable, and take them all once descriptors are back. */
static void test_out_of_descriptors(void **state)
{
    (void)state;
    struct err err = {0};
    struct acceptor *a = acceptor_new("127.0.0.1", 0, 16, &err);
    assert_non_null(a);
    struct seen s = {0};
    int c[3];
    for (int i = 0; i < 3; i++) {
        c[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(c[i] >= 0);
    }
    struct rlimit old;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    struct rlimit low = {.rlim_cur = 1024, .rlim_max = old.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    static int fillers[1024];
    int nfill = 0;
    while (nfill < 1024) {
        int fd = dup(0);
        if (fd < 0)
            break;
        fillers[nfill++] = fd;
    }
    assert_int_equal(errno, EMFILE);
    assert_int_equal(acceptor_start(a, on_accept, on_room, &s, &err), 0);
    struct sockaddr_in to = {.sin_family = AF_INET,
                             .sin_port = htons(acceptor_port(a)),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (int i = 0; i < 3; i++)
        assert_int_equal(connect(c[i], (struct sockaddr *)&to, sizeof(to)), 0);
    double cpu0 = cpu_seconds();
    struct timespec half = {0, 500 * 1000 * 1000};
    nanosleep(&half, NULL);
    double used = cpu_seconds() - cpu0;
    assert_int_equal(atomic_load(&s.n), 0);
    /* A spinning thread would use the whole half second. */
    assert_true(used < 0.1);
    for (int i = 0; i < nfill; i++)
        close(fillers[i]);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_true(wait_seen(&s, 3));
    for (int i = 0; i < 3; i++)
        close(c[i]);
    acceptor_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_dual_stack),
            cmocka_unit_test(test_one_address),
            cmocka_unit_test(test_errors),
            cmocka_unit_test(test_no_room),
            cmocka_unit_test(test_out_of_descriptors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
