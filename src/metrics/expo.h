/* SPDX-License-Identifier: MIT */
/* A builder for the Prometheus text exposition format (version 0.0.4):
 * families with # HELP and # TYPE, samples with escaped label values. It
 * knows nothing about the daemon. Family and label names are code constants;
 * a bad or repeated one aborts (a programmer error). Label values may be
 * anything (client strings): backslash, double quote and line feed are
 * escaped, and bytes that are not valid UTF-8 become U+FFFD, so the output
 * always parses. One owner thread per builder. */
#pragma once

#include <stddef.h>
#include <stdint.h>

enum expo_type {
    EXPO_COUNTER, /* name ends in _total */
    EXPO_GAUGE,
    EXPO_SUMMARY, /* samples with the suffixes _sum and _count (no quantiles) */
};

struct expo_label {
    const char *name;  /* [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__" */
    const char *value; /* any bytes */
};

struct expo;

struct expo *expo_new(void);
/* Frees @e and its text. NULL is fine. */
void expo_free(struct expo *e);

/* Starts family @name ([a-zA-Z_:][a-zA-Z0-9_:]*, never started before in @e)
 * and writes its # HELP (@help, escaped) and # TYPE lines. */
void expo_family(struct expo *e, const char *name, enum expo_type type, const char *help);

/* Writes one sample of the current family: its name followed by @suffix
 * (NULL or "" for none; "_sum" or "_count" in a summary), @nlabels labels
 * and @value. NaN and infinities print as NaN, +Inf and -Inf. */
void expo_sample(struct expo *e, const char *suffix, const struct expo_label *labels,
                 size_t nlabels, double value);
/* Same with an exact integer value (counters above 2^53 stay exact). */
void expo_sample_u64(struct expo *e, const char *suffix, const struct expo_label *labels,
                     size_t nlabels, uint64_t value);

/* Bytes written so far. */
size_t expo_len(const struct expo *e);
/* Hands over the text written so far (NUL-terminated, caller frees) and its
 * length in *@len; @e starts over with no text and no family. */
char *expo_take(struct expo *e, size_t *len);

/* Writes @value escaped for a label value (without quotes) into @dst of
 * @size bytes, cut on a character boundary if needed. Returns the length
 * written. Exposed for tests. */
size_t expo_escape_label_value(char *dst, size_t size, const char *value);
