/* SPDX-License-Identifier: MIT */
/* Leveled logging that never blocks the caller. Between log_start() and
 * log_stop() a line goes into a bounded in-process queue that a writer
 * thread copies to stderr; a full queue drops the line and counts it. The
 * level is an atomic, so any thread may log and the level may change at run
 * time. Lines are text or JSON (log_set_format), each with its syslog
 * priority in front when stderr is the systemd journal. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

enum log_level { LOG_LEVEL_ERROR = 0, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

enum log_format {
    LOG_FORMAT_TEXT, /* 2025-01-31T12:00:00.123Z warn probe: ... */
    LOG_FORMAT_JSON, /* {"time":"2025-01-31T12:00:00.123Z","level":"warn","message":"probe: ..."} */
};

/* Longest line, newline included; longer messages are cut. Under PIPE_BUF,
 * so the kernel keeps each line whole in the queue. */
#define LOG_LINE_MAX 1024
/* Queue capacity asked of the kernel (a pipe); when the system limit
 * (/proc/sys/fs/pipe-max-size) is lower, the largest power of two it allows,
 * at least 64 KiB. */
#define LOG_QUEUE_BYTES (1024 * 1024)
/* Longest wait for stderr while log_stop() flushes the queue, or while an
 * abort() flushes it before the process dies. */
#define LOG_FLUSH_MS 2000
/* Longest wait for stderr of a line written directly (before log_start()
 * and after log_stop()); after one such wait fails, the next lines do not
 * wait until stderr takes one again. */
#define LOG_DIRECT_WAIT_MS 1000

void log_set_level(enum log_level level);
bool log_enabled(enum log_level level);
/* "text" or "json" into *@out; returns 0, or -EINVAL for anything else. */
int log_format_parse(const char *s, enum log_format *out);
/* Chooses the line format, and looks whether stderr is the journal: when
 * JOURNAL_STREAM names stderr's device and inode, every line starts with its
 * syslog priority ("<3>" error, "<4>" warn, "<6>" info, "<7>" debug) for
 * journald to file it under, and text lines leave out the time (the journal
 * stamps them). The default is text, without the journal check. Main
 * thread, before other threads log. */
void log_set_format(enum log_format format);
/* Whether the last log_set_format() found stderr to be the journal. */
bool log_is_journal(void);
/* Formats one line as log_set_format() chose (at most LOG_LINE_MAX bytes,
 * cut on a character boundary; JSON escaped, bytes that are not UTF-8 shown
 * as U+FFFD) and queues it, or writes it directly outside
 * log_start()..log_stop(). Use the macros below. Any thread. */
void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Starts the writer thread; from then on no log call waits for stderr. Also
 * makes abort() flush the queue first (up to LOG_FLUSH_MS). Main thread,
 * before other threads start. Returns 0, or a negative errno; lines then keep
 * going directly to stderr. */
int log_start(void);
/* Writes out everything queued (waiting at most LOG_FLUSH_MS for stderr;
 * what does not fit by then is dropped and counted), stops the writer and
 * returns to direct writes. Main thread, once no other thread logs. */
void log_stop(void);
/* Lines dropped since the process started, because the queue was full or
 * stderr did not take them in time. Any thread. */
uint64_t log_dropped(void);

#define log_error(...)                                                                             \
    (log_enabled(LOG_LEVEL_ERROR) ? log_write(LOG_LEVEL_ERROR, __VA_ARGS__) : (void)0)
#define log_warn(...)                                                                              \
    (log_enabled(LOG_LEVEL_WARN) ? log_write(LOG_LEVEL_WARN, __VA_ARGS__) : (void)0)
#define log_info(...)                                                                              \
    (log_enabled(LOG_LEVEL_INFO) ? log_write(LOG_LEVEL_INFO, __VA_ARGS__) : (void)0)
#define log_debug(...)                                                                             \
    (log_enabled(LOG_LEVEL_DEBUG) ? log_write(LOG_LEVEL_DEBUG, __VA_ARGS__) : (void)0)
