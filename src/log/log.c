/* SPDX-License-Identifier: MIT */
/* Non-blocking line logger. Each line is formatted on the stack and handed
 * to an in-process pipe with one non-blocking write(2): the kernel keeps a
 * write under PIPE_BUF whole and orders it against the others, so the queue
 * needs no lock of ours, and a full pipe answers EAGAIN at once (the line is
 * dropped and counted). A writer thread copies the pipe to stderr and, when
 * stderr takes lines again, says how many were dropped. Lines are text or
 * JSON, with the syslog priority in front when stderr is the journal. Any
 * thread. */
#include "log/log.h"

#include "core/jsonfmt.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <unistr.h>

_Static_assert(LOG_LINE_MAX <= PIPE_BUF, "a queued line must be one atomic pipe write");

static _Atomic int log_level = LOG_LEVEL_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};
/* syslog(3) priorities of the levels: LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG. */
static const char level_priorities[] = {'3', '4', '6', '7'};

/* Set before threads start (log_set_format), read by every producer. */
static _Atomic int log_format = LOG_FORMAT_TEXT;
static _Atomic bool log_journal; /* stderr is the journal: "<N>" in front, no time in text */

/* The queue. queue_wr is the pipe's non-blocking write end while the writer
 * runs, -1 otherwise; producers counts log_write calls that may be using it,
 * so that log_stop() closes it only once none does. queue_rd is the
 * writer's. */
static _Atomic int queue_wr = -1;
static _Atomic unsigned producers;
static int queue_rd = -1;
static pthread_t writer;
static bool atexit_done;

/* Bytes put into the queue, and bytes the writer took out and settled
 * (written or dropped): the abort path waits for them to meet. */
static _Atomic uint64_t queued_bytes;
static _Atomic uint64_t settled_bytes;

static _Atomic uint64_t dropped_total;      /* since start, for log_dropped() */
static _Atomic uint64_t dropped_unreported; /* not yet told on stderr */
static _Atomic uint64_t give_up_at_ms;      /* monotonic; 0: wait for stderr forever */
static _Atomic bool direct_stuck;           /* the last direct write timed out */

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void log_set_level(enum log_level level)
{
    atomic_store_explicit(&log_level, (int)level, memory_order_relaxed);
}

bool log_enabled(enum log_level level)
{
    return (int)level <= atomic_load_explicit(&log_level, memory_order_relaxed);
}

uint64_t log_dropped(void)
{
    return atomic_load_explicit(&dropped_total, memory_order_relaxed);
}

static void count_dropped(uint64_t lines)
{
    atomic_fetch_add_explicit(&dropped_total, lines, memory_order_relaxed);
    atomic_fetch_add_explicit(&dropped_unreported, lines, memory_order_relaxed);
}

int log_format_parse(const char *s, enum log_format *out)
{
    if (strcmp(s, "text") == 0)
        *out = LOG_FORMAT_TEXT;
    else if (strcmp(s, "json") == 0)
        *out = LOG_FORMAT_JSON;
    else
        return -EINVAL;
    return 0;
}

/* Whether JOURNAL_STREAM ("<device>:<inode>", set by systemd for a service
 * whose stderr it connected to the journal) names what stderr is now: a
 * redirected stderr keeps the variable but is no longer the journal. */
static bool stderr_is_journal(void)
{
    const char *v = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    int end = 0;
    if (v == NULL || sscanf(v, "%llu:%llu%n", &dev, &ino, &end) != 2 || v[end] != '\0')
        return false;
    struct stat st;
    if (fstat(STDERR_FILENO, &st) == -1)
        return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_set_format(enum log_format format)
{
    atomic_store_explicit(&log_format, (int)format, memory_order_relaxed);
    atomic_store_explicit(&log_journal, stderr_is_journal(), memory_order_relaxed);
}

bool log_is_journal(void)
{
    return atomic_load_explicit(&log_journal, memory_order_relaxed);
}

/* Clamps snprintf's result @m to what a buffer with @room bytes left holds
 * (the NUL excluded). */
static size_t clamp(int m, size_t room)
{
    if (m <= 0 || room == 0)
        return 0;
    return (size_t)m < room ? (size_t)m : room - 1;
}

/* "2025-01-31T12:00:00.123Z" into @buf (at least 32 bytes); returns its length. */
static size_t format_time(char *buf, size_t size)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    return n + clamp(snprintf(buf + n, size - n, ".%03ldZ", ts.tv_nsec / 1000000L), size - n);
}

/* Appends @msg to @buf at @o as the inside of a JSON string, stopping
 * before @end so that a cut never splits an escape or a character. Bytes
 * that are not UTF-8 become U+FFFD, so the line is valid JSON whatever a
 * message carries. Returns the new offset. */
static size_t json_escape(char *buf, size_t o, size_t end, const char *msg)
{
    const uint8_t *s = (const uint8_t *)msg;
    size_t n = strlen(msg);
    while (n > 0) {
        ucs4_t uc;
        int len = u8_mbtoucr(&uc, s, n);
        size_t take = len < 0 ? 1 : (size_t)len;
        char esc[8];
        const char *out = esc;
        size_t el;
        if (len < 0) {
            out = "\\ufffd";
            el = 6;
        } else if (uc == '"' || uc == '\\') {
            esc[0] = '\\';
            esc[1] = (char)uc;
            el = 2;
        } else if (uc == '\n') {
            out = "\\n";
            el = 2;
        } else if (uc == '\t') {
            out = "\\t";
            el = 2;
        } else if (uc < 0x20 || uc == 0x7f) {
            el = jsonfmt_escape_byte(esc, uc);
        } else {
            out = (const char *)s;
            el = take;
        }
        if (o + el > end)
            break;
        memcpy(buf + o, out, el);
        o += el;
        s += take;
        n -= take;
    }
    return o;
}

/* Formats one line into @buf (LOG_LINE_MAX bytes); returns its length,
 * newline included. Text: "<time> <level> <message>", without the time
 * when stderr is the journal (it stamps every line itself). JSON:
 * {"time":"<time>","level":"<level>","message":"<message>"}. Either way
 * "<N>" (the syslog priority) comes first when stderr is the journal. */
static size_t format_line(char *buf, enum log_level level, const char *fmt, va_list ap)
        __attribute__((format(printf, 3, 0)));

static size_t format_line(char *buf, enum log_level level, const char *fmt, va_list ap)
{
    bool journal = atomic_load_explicit(&log_journal, memory_order_relaxed);
    bool json = atomic_load_explicit(&log_format, memory_order_relaxed) == LOG_FORMAT_JSON;
    size_t n = 0;
    if (journal) {
        buf[n++] = '<';
        buf[n++] = level_priorities[level];
        buf[n++] = '>';
    }
    char stamp[32] = "";
    if (json || !journal)
        format_time(stamp, sizeof(stamp));
    if (json) {
        char msg[LOG_LINE_MAX];
        vsnprintf(msg, sizeof(msg), fmt, ap);
        n += clamp(snprintf(buf + n, LOG_LINE_MAX - n,
                            "{\"time\":\"%s\",\"level\":\"%s\",\"message\":\"", stamp,
                            level_names[level]),
                   LOG_LINE_MAX - n);
        /* Room for the closing "}, the newline and snprintf's NUL. */
        n = json_escape(buf, n, LOG_LINE_MAX - 4, msg);
        buf[n++] = '"';
        buf[n++] = '}';
        buf[n++] = '\n';
        return n;
    }
    if (stamp[0] != '\0')
        n += clamp(snprintf(buf + n, LOG_LINE_MAX - n, "%s ", stamp), LOG_LINE_MAX - n);
    n += clamp(snprintf(buf + n, LOG_LINE_MAX - n, "%s ", level_names[level]), LOG_LINE_MAX - n);
    /* Keep the last byte for the newline. */
    n += clamp(vsnprintf(buf + n, LOG_LINE_MAX - n - 1, fmt, ap), LOG_LINE_MAX - n - 1);
    /* Keep one line per record even if a message carries a newline. */
    for (size_t i = 0; i < n; i++)
        if (buf[i] == '\n' || buf[i] == '\r')
            buf[i] = ' ';
    buf[n++] = '\n';
    return n;
}

static size_t format_linef(char *buf, enum log_level level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static size_t format_linef(char *buf, enum log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t n = format_line(buf, level, fmt, ap);
    va_end(ap);
    return n;
}

static size_t count_lines(const char *p, size_t n)
{
    size_t lines = 0;
    for (size_t i = 0; i < n; i++)
        lines += p[i] == '\n';
    return lines;
}

/* Writes @n bytes to stderr without ever blocking in write(2): it waits in
 * poll() for room, at most until @deadline_ms (monotonic; 0: none) or the
 * give-up time log_stop() sets. Writes at most PIPE_BUF at once, which a
 * pipe with room takes without blocking. Returns the bytes written. */
static size_t write_stderr(const char *p, size_t n, uint64_t deadline_ms)
{
    size_t done = 0;
    while (done < n) {
        uint64_t limit = atomic_load_explicit(&give_up_at_ms, memory_order_relaxed);
        if (deadline_ms != 0 && (limit == 0 || deadline_ms < limit))
            limit = deadline_ms;
        int timeout_ms = 100;
        if (limit != 0) {
            uint64_t now = mono_ms();
            if (now >= limit)
                break;
            if (limit - now < 100)
                timeout_ms = (int)(limit - now);
        }
        struct pollfd pfd = {.fd = STDERR_FILENO, .events = POLLOUT};
        int r = poll(&pfd, 1, timeout_ms);
        if (r == -1 && errno != EINTR)
            break;
        if (r <= 0)
            continue;
        if (pfd.revents & (POLLERR | POLLHUP | POLLNVAL))
            break;
        size_t chunk = n - done < PIPE_BUF ? n - done : PIPE_BUF;
        ssize_t w = write(STDERR_FILENO, p + done, chunk);
        if (w == -1 && errno != EINTR && errno != EAGAIN)
            break;
        if (w > 0)
            done += (size_t)w;
    }
    return done;
}

/* Reads of the queue end anywhere, not only after a newline: the writer
 * tells about drops only between two lines, and after giving up in the
 * middle of one it ends that line before anything else is written. */
static _Atomic bool mid_line;

/* Ends a line the writer cut; returns true when no line is left cut. */
static bool end_cut_line(uint64_t deadline_ms)
{
    if (!atomic_load_explicit(&mid_line, memory_order_relaxed))
        return true;
    if (write_stderr("\n", 1, deadline_ms) != 1)
        return false;
    atomic_store_explicit(&mid_line, false, memory_order_relaxed);
    return true;
}

/* Writes a line straight to stderr, waiting at most LOG_DIRECT_WAIT_MS, and
 * not at all after a wait that failed, until a line gets through again. */
static void write_direct(const char *buf, size_t n)
{
    bool stuck = atomic_load_explicit(&direct_stuck, memory_order_relaxed);
    uint64_t now = mono_ms();
    uint64_t deadline = stuck ? now + 1 : now + LOG_DIRECT_WAIT_MS;
    size_t w = end_cut_line(deadline) ? write_stderr(buf, n, deadline) : 0;
    atomic_store_explicit(&direct_stuck, w < n, memory_order_relaxed);
    if (w < n)
        count_dropped(1);
}

void log_write(enum log_level level, const char *fmt, ...)
{
    char buf[LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    size_t n = format_line(buf, level, fmt, ap);
    va_end(ap);

    /* Sequentially consistent on purpose: either log_stop() sees this call
     * in producers, or this call sees queue_wr at -1. */
    atomic_fetch_add(&producers, 1);
    int fd = atomic_load(&queue_wr);
    if (fd != -1) {
        ssize_t w;
        do {
            w = write(fd, buf, n);
        } while (w == -1 && errno == EINTR);
        if (w > 0)
            atomic_fetch_add(&queued_bytes, (uint64_t)w);
        atomic_fetch_sub(&producers, 1);
        if (w == (ssize_t)n)
            return;
        if (w == -1 && errno == EAGAIN) {
            count_dropped(1);
            return;
        }
        /* Anything else is a broken queue: say it directly. */
    } else {
        atomic_fetch_sub(&producers, 1);
    }
    write_direct(buf, n);
}

static void report_dropped(void)
{
    uint64_t lines = atomic_exchange_explicit(&dropped_unreported, 0, memory_order_relaxed);
    if (lines == 0)
        return;
    char buf[LOG_LINE_MAX];
    size_t n = format_linef(buf, LOG_LEVEL_WARN,
                            "log: dropped %llu line(s): stderr did not take them in time",
                            (unsigned long long)lines);
    if (write_stderr(buf, n, 0) < n)
        atomic_fetch_add_explicit(&dropped_unreported, lines, memory_order_relaxed);
}

static void *writer_main(void *arg)
{
    (void)arg;
    char buf[16384];
    for (;;) {
        ssize_t n = read(queue_rd, buf, sizeof(buf));
        if (n == 0)
            break; /* log_stop() closed the write end and everything is out */
        if (n == -1) {
            if (errno == EINTR)
                continue;
            break;
        }
        size_t w = write_stderr(buf, (size_t)n, 0);
        if (w > 0)
            atomic_store_explicit(&mid_line, buf[w - 1] != '\n', memory_order_relaxed);
        if (w < (size_t)n)
            count_dropped(count_lines(buf + w, (size_t)n - w));
        atomic_fetch_add(&settled_bytes, (uint64_t)n);
        if (!atomic_load_explicit(&mid_line, memory_order_relaxed))
            report_dropped();
    }
    if (end_cut_line(mono_ms() + 100))
        report_dropped();
    return NULL;
}

/* abort(): give the writer up to LOG_FLUSH_MS to put out what is queued,
 * which usually ends with the line that explains the abort. Only
 * async-signal-safe calls. */
static void on_abort(int sig)
{
    (void)sig;
    uint64_t deadline = mono_ms() + LOG_FLUSH_MS;
    while (atomic_load(&settled_bytes) < atomic_load(&queued_bytes) && mono_ms() < deadline) {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 5 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static void set_abort_handler(bool on)
{
    struct sigaction sa = {0};
    sa.sa_handler = on ? on_abort : SIG_DFL;
    sa.sa_flags = on ? SA_RESETHAND : 0;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGABRT, &sa, NULL);
}

int log_start(void)
{
    if (atomic_load(&queue_wr) != -1)
        return 0;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) == -1)
        return -errno;
    int flags = fcntl(fds[1], F_GETFL);
    if (flags == -1 || fcntl(fds[1], F_SETFL, flags | O_NONBLOCK) == -1) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        return -e;
    }
    for (int size = LOG_QUEUE_BYTES; size > 65536; size /= 2)
        if (fcntl(fds[1], F_SETPIPE_SZ, size) != -1)
            break;
    queue_rd = fds[0];
    atomic_store(&give_up_at_ms, 0);
    /* The writer takes no signal, so they reach the threads that handle them. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&writer, NULL, writer_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        close(fds[0]);
        close(fds[1]);
        queue_rd = -1;
        return -rc;
    }
    atomic_store(&queue_wr, fds[1]);
    set_abort_handler(true);
    if (!atexit_done)
        atexit_done = atexit(log_stop) == 0;
    return 0;
}

void log_stop(void)
{
    int fd = atomic_exchange(&queue_wr, -1);
    if (fd == -1)
        return;
    while (atomic_load(&producers) != 0)
        sched_yield();
    set_abort_handler(false);
    atomic_store(&give_up_at_ms, mono_ms() + LOG_FLUSH_MS);
    close(fd); /* the writer reads the rest, then end of file */
    pthread_join(writer, NULL);
    close(queue_rd);
    queue_rd = -1;
    atomic_store(&give_up_at_ms, 0); /* direct writes have their own bound */
}
