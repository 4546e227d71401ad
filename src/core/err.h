/* SPDX-License-Identifier: MIT */
/* Caller-owned error reports: a negative errno-style code plus one line of
 * text that names the operation, the object and the cause. Any thread. */
#pragma once

#include <stdarg.h>

struct err {
    int code;
    char msg[256];
};

/* Sets @err (may be NULL) to @code and the formatted message; returns @code
 * so that `return err_set(err, -EINVAL, "...")` works. */
int err_set(struct err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* err_set() with the arguments as a va_list, for functions of the same kind. */
int err_vset(struct err *err, int code, const char *fmt, va_list ap)
        __attribute__((format(printf, 3, 0)));

/* Prepends "<formatted>: " to the message already in @err (may be NULL). */
void err_prefix(struct err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Clears @err. */
void err_clear(struct err *err);
