/* SPDX-License-Identifier: MIT */
/* Client strings made safe to show: valid UTF-8 without control characters.
 * Names clients choose are normalized once, where they enter a table, so
 * every rendering (JSON keys, Prometheus labels) sees the same printable
 * text and two raw names that look alike are counted as one. Any thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Copies @src into @dst (@size > 0 bytes), replacing each byte that is not
 * part of a valid UTF-8 sequence, and each control character (U+0000..U+001F,
 * U+007F..U+009F), with one '?'. The result is never longer than @src; it is cut
 * on a character boundary when it does not fit. Returns its length. */
size_t text_printable(char *dst, size_t size, const char *src);
/* Whether @name has the shape of a metric name: 1 to FRENO_METRIC_NAME_MAX
 * bytes of [A-Za-z0-9_-] (core/limits.h). Whether "default" is allowed is
 * the caller's rule. */
bool text_is_metric_name(const char *name);
