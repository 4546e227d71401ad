/* SPDX-License-Identifier: MIT */
/* The logger with stderr pointed at a pipe the test controls: lines stay
 * whole and in order, a full stderr never blocks a caller (lines are dropped
 * and the count is told later), log_stop() flushes the queue yet returns in
 * bounded time when stderr takes nothing, and abort() flushes it first.
 * JSON lines parse (jansson) whatever bytes a message carries, and with
 * JOURNAL_STREAM naming stderr every line starts with its syslog priority. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "log/log.h"

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- stderr redirection ---- */

static int saved_stderr = -1;

/* Points stderr at a new pipe (@size bytes, full if @fill); returns its read end. */
static int stderr_to_pipe(int size, bool fill)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    if (size > 0)
        assert_true(fcntl(p[1], F_SETPIPE_SZ, size) != -1);
    if (fill) {
        int fl = fcntl(p[1], F_GETFL);
        fcntl(p[1], F_SETFL, fl | O_NONBLOCK);
        static const char junk[] = "filler line\n";
        while (write(p[1], junk, sizeof(junk) - 1) > 0)
            ;
        assert_int_equal(errno, EAGAIN);
        fcntl(p[1], F_SETFL, fl);
    }
    saved_stderr = dup(STDERR_FILENO);
    assert_true(dup2(p[1], STDERR_FILENO) != -1);
    close(p[1]);
    return p[0];
}

/* Gives stderr back; the pipe's write end closes, so its reader sees EOF. */
static void stderr_restore(void)
{
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    saved_stderr = -1;
}

struct reader {
    int fd;
    pthread_t th;
    char *buf;
    size_t len, size;
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    for (;;) {
        if (r->size - r->len < 65536) {
            r->size = r->size ? r->size * 2 : 1 << 20;
            r->buf = realloc(r->buf, r->size);
            assert_non_null(r->buf);
        }
        ssize_t n = read(r->fd, r->buf + r->len, r->size - r->len - 1);
        if (n <= 0)
            break;
        r->len += (size_t)n;
    }
    r->buf[r->len] = '\0';
    return NULL;
}

static void reader_start(struct reader *r, int fd)
{
    memset(r, 0, sizeof(*r));
    r->fd = fd;
    assert_int_equal(pthread_create(&r->th, NULL, reader_main, r), 0);
}

/* Waits for EOF (call stderr_restore() first); the text stays in r->buf. */
static void reader_join(struct reader *r)
{
    pthread_join(r->th, NULL);
    close(r->fd);
}

/* "2025-01-31T12:00:00.123Z " */
static bool has_timestamp(const char *line)
{
    return strlen(line) > 25 && line[4] == '-' && line[10] == 'T' && line[19] == '.' &&
           line[23] == 'Z' && line[24] == ' ';
}

/* ---- tests ---- */

static void test_direct_before_start(void **state)
{
    (void)state;
    int rd = stderr_to_pipe(0, false);
    log_info("early line %d", 1);
    log_debug("not at this level");
    stderr_restore();
    char buf[256] = "";
    ssize_t n = read(rd, buf, sizeof(buf) - 1);
    close(rd);
    assert_true(n > 0);
    assert_true(has_timestamp(buf));
    assert_non_null(strstr(buf, "Z info early line 1\n"));
    assert_null(strstr(buf, "not at this level"));
}

#define THREADS          4
#define LINES_PER_THREAD 5000

static void *log_many(void *arg)
{
    int t = (int)(intptr_t)arg;
    char pad[800];
    for (int i = 0; i < LINES_PER_THREAD; i++) {
        size_t len = (size_t)(i * 37 + t * 11) % sizeof(pad);
        memset(pad, 'a' + t, len);
        pad[len] = '\0';
        log_info("thread %d seq %d pad %s end", t, i, pad);
    }
    return NULL;
}

static void test_lines_whole_and_in_order(void **state)
{
    (void)state;
    struct reader r;
    reader_start(&r, stderr_to_pipe(0, false));
    uint64_t dropped0 = log_dropped();
    assert_int_equal(log_start(), 0);
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, log_many, (void *)(intptr_t)t), 0);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    log_stop();
    stderr_restore();
    reader_join(&r);

    int next[THREADS] = {0};
    size_t lines = 0;
    bool told = false;
    for (char *line = r.buf, *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
        *nl = '\0';
        if (!has_timestamp(line))
            fail_msg("not a whole line: %.200s", line);
        if (strstr(line, " warn log: dropped ") != NULL) {
            told = true;
            continue;
        }
        int t = -1, seq = -1, end = 0;
        assert_int_equal(sscanf(line + 25, "info thread %d seq %d pad %n", &t, &seq, &end), 2);
        assert_true(t >= 0 && t < THREADS && end > 0);
        const char *pad = line + 25 + end;
        size_t len = strspn(pad, (const char[]){(char)('a' + t), '\0'});
        assert_int_equal(len, (size_t)(seq * 37 + t * 11) % 800);
        assert_string_equal(pad + len, (len ? " end" : "end"));
        assert_true(seq >= next[t]); /* in order; a gap is a dropped line */
        next[t] = seq + 1;
        lines++;
    }
    uint64_t dropped = log_dropped() - dropped0;
    assert_int_equal(lines + dropped, THREADS * LINES_PER_THREAD);
    assert_true(dropped == 0 || told);
    free(r.buf);
}

/* About 4 MB of lines: more than the queue holds. */
#define FLOOD_LINES 100000

static atomic_bool flood_done;

static void *flood(void *arg)
{
    (void)arg;
    for (int i = 0; i < FLOOD_LINES; i++)
        log_warn("flood %d", i);
    atomic_store(&flood_done, true);
    return NULL;
}

static void test_full_stderr_never_blocks(void **state)
{
    (void)state;
    int rd = stderr_to_pipe(4096, true);
    uint64_t dropped0 = log_dropped();
    assert_int_equal(log_start(), 0);
    atomic_store(&flood_done, false);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, flood, NULL), 0);
    uint64_t deadline = now_ms() + 10000;
    while (!atomic_load(&flood_done) && now_ms() < deadline) {
        struct timespec ts = {0, 1000000L};
        nanosleep(&ts, NULL);
    }
    if (!atomic_load(&flood_done))
        fail_msg("%d log calls did not return within 10 s while stderr was full", FLOOD_LINES);
    pthread_join(th, NULL);
    uint64_t dropped = log_dropped() - dropped0;
    assert_true(dropped > 0);

    /* stderr takes lines again: what is queued comes out, then the count. */
    struct reader r;
    reader_start(&r, rd);
    deadline = now_ms() + 10000;
    for (;;) {
        uint64_t before = log_dropped();
        log_warn("after the flood");
        if (log_dropped() == before)
            break; /* queued */
        if (now_ms() > deadline)
            fail_msg("the queue did not drain within 10 s of stderr taking lines again");
        struct timespec ts = {0, 1000000L};
        nanosleep(&ts, NULL);
    }
    log_stop();
    /* Past the flush deadline: direct writes are not bound by it. */
    struct timespec ts = {(LOG_FLUSH_MS + 100) / 1000, (LOG_FLUSH_MS + 100) % 1000 * 1000000L};
    assert_int_equal(nanosleep(&ts, NULL), 0);
    log_warn("after the stop");
    stderr_restore();
    reader_join(&r);
    assert_non_null(strstr(r.buf, "warn flood 0\n"));
    assert_non_null(strstr(r.buf, "warn after the flood\n"));
    assert_non_null(strstr(r.buf, "warn after the stop\n"));
    assert_true(strstr(r.buf, "after the flood") < strstr(r.buf, "after the stop"));
    assert_non_null(strstr(r.buf, " warn log: dropped "));
    free(r.buf);
}

static void test_stop_is_bounded_when_stderr_is_stuck(void **state)
{
    (void)state;
    int rd = stderr_to_pipe(4096, true);
    uint64_t dropped0 = log_dropped();
    assert_int_equal(log_start(), 0);
    for (int i = 0; i < 100; i++)
        log_info("stuck %d", i);
    uint64_t t0 = now_ms();
    log_stop();
    uint64_t took = now_ms() - t0;
    if (took > LOG_FLUSH_MS + 1000)
        fail_msg("log_stop took %llu ms with stderr stuck", (unsigned long long)took);
    assert_true(log_dropped() - dropped0 >= 100);
    /* After the stop lines go directly: one bounded wait, then none. */
    t0 = now_ms();
    log_info("direct 1");
    took = now_ms() - t0;
    assert_true(took <= LOG_DIRECT_WAIT_MS + 500);
    t0 = now_ms();
    log_info("direct 2");
    assert_true(now_ms() - t0 < 100);
    stderr_restore();
    close(rd);
}

/* The child logs and aborts while stderr is full; the parent starts reading
 * only after a while. The line must get out before the process dies. */
static void test_abort_flushes_the_queue(void **state)
{
    (void)state;
    int rd = stderr_to_pipe(4096, true);
    pid_t pid = fork();
    assert_true(pid != -1);
    if (pid == 0) {
        if (log_start() != 0)
            _exit(3);
        log_error("the reason for the abort");
        abort();
    }
    stderr_restore();
    struct timespec ts = {0, 300 * 1000000L};
    nanosleep(&ts, NULL);
    struct reader r;
    reader_start(&r, rd);
    reader_join(&r);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    assert_non_null(strstr(r.buf, "error the reason for the abort\n"));
    free(r.buf);
}

/* Logs @fmt at @level with stderr on a pipe; returns the output (static). */
static const char *log_capture(enum log_level level, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static const char *log_capture(enum log_level level, const char *fmt, ...)
{
    static char out[4 * LOG_LINE_MAX];
    int rd = stderr_to_pipe(0, false);
    char msg[4 * LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_write(level, "%s", msg);
    stderr_restore();
    ssize_t n = read(rd, out, sizeof(out) - 1);
    close(rd);
    out[n > 0 ? n : 0] = '\0';
    return out;
}

/* Parses the one JSON line in @line and checks its members; returns the
 * message (static). */
static const char *json_message(const char *line, const char *level)
{
    static char msg[LOG_LINE_MAX];
    size_t len = strlen(line);
    assert_true(len > 0 && len <= LOG_LINE_MAX);
    assert_true(line[len - 1] == '\n');
    assert_null(memchr(line, '\n', len - 1));
    json_error_t e;
    json_t *o = json_loadb(line, len, 0, &e);
    if (o == NULL)
        fail_msg("not JSON (%s): %s", e.text, line);
    assert_int_equal(json_object_size(o), 3);
    const char *t = json_string_value(json_object_get(o, "time"));
    assert_non_null(t);
    char stamped[64];
    snprintf(stamped, sizeof(stamped), "%s x", t);
    assert_true(has_timestamp(stamped));
    assert_string_equal(json_string_value(json_object_get(o, "level")), level);
    snprintf(msg, sizeof(msg), "%s", json_string_value(json_object_get(o, "message")));
    json_decref(o);
    return msg;
}

static void test_json_lines(void **state)
{
    (void)state;
    log_set_format(LOG_FORMAT_JSON);
    const char *line = log_capture(LOG_LEVEL_WARN, "plain %d", 7);
    assert_string_equal(json_message(line, "warn"), "plain 7");

    /* Quotes, backslashes, controls, DEL, UTF-8, and bytes that are not UTF-8. */
    line = log_capture(LOG_LEVEL_ERROR, "q\"b\\n\nt\tc\x01"
                                        "d\x7f e\xc3\xa9 bad\xff\xc3 end");
    assert_non_null(strstr(line, "\"message\":\"q\\\"b\\\\n\\nt\\tc\\u0001d\\u007f "
                                 "e\xc3\xa9 bad\\ufffd\\ufffd end\"}\n"));
    assert_string_equal(json_message(line, "error"),
                        "q\"b\\n\nt\tc\x01"
                        "d\x7f e\xc3\xa9 bad\xef\xbf\xbd\xef\xbf\xbd end");

    /* Cut to LOG_LINE_MAX, never inside an escape or a character. */
    char big[3000];
    for (size_t i = 0; i + 2 < sizeof(big); i += 2)
        memcpy(big + i, i % 4 ? "\xc3\xa9" : "\"\"", 2);
    big[sizeof(big) - 2] = '\0';
    line = log_capture(LOG_LEVEL_INFO, "%s", big);
    assert_true(strlen(line) <= LOG_LINE_MAX && strlen(line) > LOG_LINE_MAX - 8);
    const char *m = json_message(line, "info");
    assert_true(strncmp(m, big, strlen(m)) == 0);
    log_set_format(LOG_FORMAT_TEXT);
}

static void test_journal_priorities(void **state)
{
    (void)state;
    log_set_level(LOG_LEVEL_DEBUG);
    static const struct {
        enum log_level level;
        const char *name;
        const char *line;
    } want[] = {
            {LOG_LEVEL_ERROR, "error", "<3>error m\n"},
            {LOG_LEVEL_WARN, "warn", "<4>warn m\n"},
            {LOG_LEVEL_INFO, "info", "<6>info m\n"},
            {LOG_LEVEL_DEBUG, "debug", "<7>debug m\n"},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        int rd = stderr_to_pipe(0, false);
        struct stat st;
        assert_int_equal(fstat(STDERR_FILENO, &st), 0);
        char v[64];
        snprintf(v, sizeof(v), "%llu:%llu", (unsigned long long)st.st_dev,
                 (unsigned long long)st.st_ino);
        setenv("JOURNAL_STREAM", v, 1);
        log_set_format(LOG_FORMAT_TEXT);
        assert_true(log_is_journal());
        log_write(want[i].level, "m");
        log_set_format(LOG_FORMAT_JSON);
        log_write(want[i].level, "m");
        stderr_restore();
        char out[512] = "";
        ssize_t n = read(rd, out, sizeof(out) - 1);
        close(rd);
        out[n > 0 ? n : 0] = '\0';
        /* Text without a time (the journal stamps lines), JSON with one. */
        size_t first = strlen(want[i].line);
        assert_true(strncmp(out, want[i].line, first) == 0);
        assert_true(strncmp(out + first, want[i].line, 3) == 0);
        assert_string_equal(json_message(out + first + 3, want[i].name), "m");
    }
    log_set_level(LOG_LEVEL_INFO);

    /* The variable names another file: stderr was redirected, not the journal. */
    int rd = stderr_to_pipe(0, false);
    setenv("JOURNAL_STREAM", "1:1", 1);
    log_set_format(LOG_FORMAT_TEXT);
    assert_false(log_is_journal());
    setenv("JOURNAL_STREAM", "garbage", 1);
    log_set_format(LOG_FORMAT_TEXT);
    assert_false(log_is_journal());
    log_info("not the journal");
    stderr_restore();
    char out[256] = "";
    ssize_t n = read(rd, out, sizeof(out) - 1);
    close(rd);
    out[n > 0 ? n : 0] = '\0';
    assert_true(has_timestamp(out));
    unsetenv("JOURNAL_STREAM");
    log_set_format(LOG_FORMAT_TEXT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_direct_before_start),
            cmocka_unit_test(test_lines_whole_and_in_order),
            cmocka_unit_test(test_full_stderr_never_blocks),
            cmocka_unit_test(test_stop_is_bounded_when_stderr_is_stuck),
            cmocka_unit_test(test_abort_flushes_the_queue),
            cmocka_unit_test(test_json_lines),
            cmocka_unit_test(test_journal_priorities),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
