/* SPDX-License-Identifier: MIT */
/* Leveled logging to stderr, one write(2) per line, no lock. The level is an
 * atomic, so any thread may log and the level may change at run time. */
#pragma once

#include <stdbool.h>

enum log_level { LOG_LEVEL_ERROR = 0, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

void log_set_level(enum log_level level);
bool log_enabled(enum log_level level);
/* Writes "<RFC3339 millis> <level> <msg>\n". Use the macros below. */
void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...)                                                                             \
    (log_enabled(LOG_LEVEL_ERROR) ? log_write(LOG_LEVEL_ERROR, __VA_ARGS__) : (void)0)
#define log_warn(...)                                                                              \
    (log_enabled(LOG_LEVEL_WARN) ? log_write(LOG_LEVEL_WARN, __VA_ARGS__) : (void)0)
#define log_info(...)                                                                              \
    (log_enabled(LOG_LEVEL_INFO) ? log_write(LOG_LEVEL_INFO, __VA_ARGS__) : (void)0)
#define log_debug(...)                                                                             \
    (log_enabled(LOG_LEVEL_DEBUG) ? log_write(LOG_LEVEL_DEBUG, __VA_ARGS__) : (void)0)
