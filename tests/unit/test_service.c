/* SPDX-License-Identifier: MIT */
/* The service manager's side of sd_notify(), played by a real AF_UNIX
 * datagram socket in NOTIFY_SOCKET: READY=1 comes once, only when HTTP is up
 * and the role is known; STATUS= only when its text changes; RELOADING=1 and
 * READY=1 around a reload, never before the first READY; nothing after
 * STOPPING=1; and WATCHDOG=1 from the loop at half of WATCHDOG_USEC, not at
 * all when WATCHDOG_PID names another process. The protocol itself
 * (service/notify.h): abstract socket names, and the environment values the
 * service manager could get wrong. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "loop/loop.h"
#include "loop/loop_timer.h"
#include "service/notify.h"
#include "service/service.h"

static char sock_path[108];

/* A datagram socket bound to a fresh path, named by NOTIFY_SOCKET. */
static int notify_socket_open(void)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    assert_true(fd != -1);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sock_path, sizeof(sock_path), "/tmp/freno-test-notify-%d.sock", (int)getpid());
    unlink(sock_path);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(setenv("NOTIFY_SOCKET", sock_path, 1), 0);
    return fd;
}

static void notify_socket_close(int fd)
{
    close(fd);
    unlink(sock_path);
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
}

/* The next datagram as a string, or "" when none is waiting. */
static const char *next_msg(int fd)
{
    static char buf[1024];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static struct service_state state(bool http_up, bool known, bool leader)
{
    return (struct service_state){
            .http_up = http_up,
            .role_known = known,
            .is_leader = leader,
            .mode = "raft",
            .state = leader ? "Leader" : "Follower",
            .leader = "10.0.0.1:10008",
            .clusters = 3,
            .hosts = 7,
    };
}

static void test_ready_once_status_on_change(void **unused)
{
    (void)unused;
    int fd = notify_socket_open();
    struct loop *l = loop_new();
    struct service *s = service_new(l);
    assert_int_equal(service_watchdog_ms(s), 0);
    assert_string_equal(next_msg(fd), "");

    /* Before READY a reload is not told. */
    service_reloading(s);
    service_reloaded(s);
    assert_string_equal(next_msg(fd), "");

    struct service_state st = state(false, true, true);
    service_update(s, &st);
    assert_string_equal(next_msg(fd),
                        "STATUS=starting (raft): opening the HTTP listener; 3 cluster(s)");
    st = state(true, false, false);
    service_update(s, &st);
    assert_string_equal(
            next_msg(fd),
            "STATUS=starting (raft): HTTP is up, learning whether this node leads; 3 cluster(s)");
    service_update(s, &st);
    assert_string_equal(next_msg(fd), "");

    st = state(true, true, false);
    service_update(s, &st);
    assert_string_equal(
            next_msg(fd),
            "READY=1\nSTATUS=not leading (raft, state Follower, leader 10.0.0.1:10008); 3 cluster(s)");
    service_update(s, &st);
    assert_string_equal(next_msg(fd), "");
    st = state(true, true, true);
    service_update(s, &st);
    assert_string_equal(next_msg(fd), "STATUS=leader (raft); 3 cluster(s), 7 host(s) probed");
    st.leader = "";
    st.is_leader = false;
    service_update(s, &st);
    assert_string_equal(next_msg(fd),
                        "STATUS=not leading (raft, state Leader, leader unknown); 3 cluster(s)");

    service_reloading(s);
    const char *m = next_msg(fd);
    assert_true(strncmp(m, "RELOADING=1\nMONOTONIC_USEC=", 27) == 0);
    assert_true(strtoull(m + 27, NULL, 10) > 0);
    service_reloaded(s);
    assert_string_equal(next_msg(fd), "READY=1\nSTATUS=not leading (raft, state Leader, leader "
                                      "unknown); 3 cluster(s)");

    service_stopping(s);
    assert_string_equal(next_msg(fd), "STOPPING=1\nSTATUS=stopping");
    st = state(true, true, true);
    service_update(s, &st);
    service_reloading(s);
    service_reloaded(s);
    service_stopping(s);
    assert_string_equal(next_msg(fd), "");

    service_free(s);
    loop_free(l);
    notify_socket_close(fd);
}

static void on_stop(uv_timer_t *h)
{
    loop_stop(h->data);
}

/* Runs @l for @ms milliseconds. */
static void run_for(struct loop *l, uint64_t ms)
{
    uv_update_time(loop_uv(l));
    uv_timer_t *t = loop_timer_start(l, on_stop, l, ms, 0);
    loop_run(l);
    loop_timer_close(&t);
}

static int count_watchdogs(int fd)
{
    int n = 0;
    for (const char *m; (m = next_msg(fd))[0] != '\0';) {
        assert_string_equal(m, "WATCHDOG=1");
        n++;
    }
    return n;
}

static void test_watchdog_from_the_loop(void **unused)
{
    (void)unused;
    int fd = notify_socket_open();
    setenv("WATCHDOG_USEC", "100000", 1);
    char pid[24];
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    setenv("WATCHDOG_PID", pid, 1);
    struct loop *l = loop_new();
    struct service *s = service_new(l);
    assert_int_equal(service_watchdog_ms(s), 50);
    /* One at once, before the loop runs. */
    assert_int_equal(count_watchdogs(fd), 1);
    /* None while the loop does not turn. */
    usleep(200 * 1000);
    assert_int_equal(count_watchdogs(fd), 0);
    run_for(l, 320);
    int n = count_watchdogs(fd);
    if (n < 4 || n > 8)
        fail_msg("%d pings in 320 ms at one every 50 ms", n);
    service_free(s);
    loop_free(l);
    notify_socket_close(fd);
}

static void test_watchdog_for_another_pid(void **unused)
{
    (void)unused;
    int fd = notify_socket_open();
    setenv("WATCHDOG_USEC", "100000", 1);
    setenv("WATCHDOG_PID", "1", 1);
    struct loop *l = loop_new();
    struct service *s = service_new(l);
    assert_int_equal(service_watchdog_ms(s), 0);
    run_for(l, 150);
    assert_int_equal(count_watchdogs(fd), 0);
    service_free(s);
    loop_free(l);
    notify_socket_close(fd);
}

static void test_without_notify_socket(void **unused)
{
    (void)unused;
    unsetenv("NOTIFY_SOCKET");
    setenv("WATCHDOG_USEC", "100000", 1);
    struct loop *l = loop_new();
    struct service *s = service_new(l);
    struct service_state st = state(true, true, true);
    service_update(s, &st);
    service_reloading(s);
    service_reloaded(s);
    service_stopping(s);
    run_for(l, 60);
    service_free(s);
    loop_free(l);
    unsetenv("WATCHDOG_USEC");
}

/* An abstract name ('@' in NOTIFY_SOCKET) is the bytes after a leading NUL. */
static void test_abstract_socket(void **unused)
{
    (void)unused;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    assert_true(fd != -1);
    char name[64];
    int len = snprintf(name, sizeof(name), "freno-test-notify-%d", (int)getpid());
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path + 1, name, (size_t)len);
    socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)len);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, salen), 0);
    char env[80];
    snprintf(env, sizeof(env), "@%s", name);
    setenv("NOTIFY_SOCKET", env, 1);

    assert_int_equal(notify_send("STATUS=abstract"), 1);
    assert_string_equal(next_msg(fd), "STATUS=abstract");
    struct loop *l = loop_new();
    struct service *s = service_new(l);
    struct service_state st = state(true, true, true);
    service_update(s, &st);
    assert_string_equal(next_msg(fd),
                        "READY=1\nSTATUS=leader (raft); 3 cluster(s), 7 host(s) probed");
    service_free(s);
    loop_free(l);
    /* A name that differs in its last byte reaches nobody. */
    env[strlen(env) - 1] ^= 1;
    setenv("NOTIFY_SOCKET", env, 1);
    assert_true(notify_send("STATUS=elsewhere") < 0);
    assert_string_equal(next_msg(fd), "");
    close(fd);
    unsetenv("NOTIFY_SOCKET");
}

/* NOTIFY_SOCKET that is not absolute, or too long for sun_path, is refused
 * with its reason; the service goes on (its calls only warn). */
static void test_bad_notify_socket(void **unused)
{
    (void)unused;
    setenv("NOTIFY_SOCKET", "run/notify", 1);
    assert_int_equal(notify_send("READY=1"), -EINVAL);
    setenv("NOTIFY_SOCKET", "vsock:2:1234", 1);
    assert_int_equal(notify_send("READY=1"), -EINVAL);

    struct sockaddr_un sa;
    char longname[sizeof(sa.sun_path) + 2];
    /* A path fills sun_path with its NUL: 107 characters fit, 108 do not. */
    memset(longname, 'a', sizeof(longname));
    longname[0] = '/';
    longname[sizeof(sa.sun_path)] = '\0';
    setenv("NOTIFY_SOCKET", longname, 1);
    assert_int_equal(notify_send("READY=1"), -ENAMETOOLONG);
    longname[sizeof(sa.sun_path) - 1] = '\0';
    setenv("NOTIFY_SOCKET", longname, 1);
    assert_true(notify_send("READY=1") != -ENAMETOOLONG); /* fits; nobody listens */
    /* An abstract name needs no NUL: 108 bytes with the '@' fit, 109 do not. */
    memset(longname, 'a', sizeof(longname));
    longname[0] = '@';
    longname[sizeof(sa.sun_path) + 1] = '\0';
    setenv("NOTIFY_SOCKET", longname, 1);
    assert_int_equal(notify_send("READY=1"), -ENAMETOOLONG);
    longname[sizeof(sa.sun_path)] = '\0';
    setenv("NOTIFY_SOCKET", longname, 1);
    assert_true(notify_send("READY=1") != -ENAMETOOLONG);

    setenv("NOTIFY_SOCKET", "", 1);
    assert_int_equal(notify_send("READY=1"), 0);
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(notify_send("READY=1"), 0);

    setenv("NOTIFY_SOCKET", "relative", 1);
    struct loop *l = loop_new();
    struct service *s = service_new(l);
    struct service_state st = state(true, true, true);
    service_update(s, &st);
    service_stopping(s);
    service_free(s);
    loop_free(l);
    unsetenv("NOTIFY_SOCKET");
}

/* WATCHDOG_USEC must be a positive decimal number of microseconds, below
 * systemd's infinity; anything else means no watchdog pings. */
static void test_bad_watchdog_usec(void **unused)
{
    (void)unused;
    static const struct {
        const char *value;
        int rc;
    } cases[] = {
            {"0", -EINVAL},
            {"", -EINVAL},
            {"junk", -EINVAL},
            {"100000x", -EINVAL},
            {"-100000", -EINVAL},
            {" 100000", -EINVAL},
            {"+100000", -EINVAL},
            {"18446744073709551615", -ERANGE}, /* infinity */
            {"18446744073709551616", -ERANGE},
            {"99999999999999999999999", -ERANGE},
    };
    uint64_t usec;
    unsetenv("WATCHDOG_PID");
    unsetenv("WATCHDOG_USEC");
    assert_int_equal(notify_watchdog_usec(&usec), 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        setenv("WATCHDOG_USEC", cases[i].value, 1);
        usec = 7;
        if (notify_watchdog_usec(&usec) != cases[i].rc)
            fail_msg("WATCHDOG_USEC=\"%s\": expected %d", cases[i].value, cases[i].rc);
        assert_int_equal(usec, 7);
        struct loop *l = loop_new();
        struct service *s = service_new(l);
        assert_int_equal(service_watchdog_ms(s), 0);
        service_free(s);
        loop_free(l);
    }
    setenv("WATCHDOG_USEC", "18446744073709551614", 1);
    assert_int_equal(notify_watchdog_usec(&usec), 1);
    assert_true(usec == UINT64_MAX - 1);
    setenv("WATCHDOG_USEC", "1", 1);
    assert_int_equal(notify_watchdog_usec(&usec), 1);
    assert_int_equal(usec, 1);
    unsetenv("WATCHDOG_USEC");
}

/* WATCHDOG_PID: ours, another process's, or not a pid at all. */
static void test_watchdog_pid(void **unused)
{
    (void)unused;
    uint64_t usec = 0;
    char pid[24];
    setenv("WATCHDOG_USEC", "30000000", 1);
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    setenv("WATCHDOG_PID", pid, 1);
    assert_int_equal(notify_watchdog_usec(&usec), 1);
    assert_int_equal(usec, 30000000);
    snprintf(pid, sizeof(pid), "%d", (int)getpid() + 1);
    setenv("WATCHDOG_PID", pid, 1);
    assert_int_equal(notify_watchdog_usec(&usec), 0);
    setenv("WATCHDOG_PID", "1", 1);
    assert_int_equal(notify_watchdog_usec(&usec), 0);
    setenv("WATCHDOG_PID", "0", 1);
    assert_int_equal(notify_watchdog_usec(&usec), -EINVAL);
    setenv("WATCHDOG_PID", "12ab", 1);
    assert_int_equal(notify_watchdog_usec(&usec), -EINVAL);
    setenv("WATCHDOG_PID", "99999999999999999999999", 1);
    assert_int_equal(notify_watchdog_usec(&usec), -ERANGE);
    unsetenv("WATCHDOG_PID");
    unsetenv("WATCHDOG_USEC");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_ready_once_status_on_change),
            cmocka_unit_test(test_watchdog_from_the_loop),
            cmocka_unit_test(test_watchdog_for_another_pid),
            cmocka_unit_test(test_without_notify_socket),
            cmocka_unit_test(test_abstract_socket),
            cmocka_unit_test(test_bad_notify_socket),
            cmocka_unit_test(test_bad_watchdog_usec),
            cmocka_unit_test(test_watchdog_pid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
