/* SPDX-License-Identifier: MIT */
/* Lock-free line logger: each line is formatted on the stack and written with
 * a single write(2), which the kernel keeps whole for pipes and files. */
#include "log/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static _Atomic int log_level = LOG_LEVEL_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_set_level(enum log_level level)
{
    atomic_store_explicit(&log_level, (int)level, memory_order_relaxed);
}

bool log_enabled(enum log_level level)
{
    return (int)level <= atomic_load_explicit(&log_level, memory_order_relaxed);
}

void log_write(enum log_level level, const char *fmt, ...)
{
    char buf[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    int m = snprintf(buf + n, sizeof(buf) - n, ".%03ldZ %s ", ts.tv_nsec / 1000000L,
                     level_names[level]);
    if (m > 0)
        n += (size_t)m;
    va_list ap;
    va_start(ap, fmt);
    m = vsnprintf(buf + n, sizeof(buf) - n - 1, fmt, ap);
    va_end(ap);
    if (m > 0)
        n += ((size_t)m < sizeof(buf) - n - 1) ? (size_t)m : sizeof(buf) - n - 2;
    /* Keep one line per record even if a message carries a newline. */
    for (size_t i = 0; i < n; i++)
        if (buf[i] == '\n' || buf[i] == '\r')
            buf[i] = ' ';
    buf[n++] = '\n';
    ssize_t w;
    do {
        w = write(STDERR_FILENO, buf, n);
    } while (w == -1 && errno == EINTR);
}
