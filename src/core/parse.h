/* SPDX-License-Identifier: MIT */
/* Strict number parsing: the whole string must be a number in range, with no
 * leading or trailing junk. Return 0 or -EINVAL / -ERANGE. Any thread. */
#pragma once

#include <stdint.h>

int parse_i64(const char *s, int64_t *out);
int parse_u32(const char *s, uint32_t *out);
/* Parses a finite double in decimal notation (no "nan", "inf" or hex), in
 * range (-ERANGE on overflow and underflow); "-0" gives 0. */
int parse_double(const char *s, double *out);
