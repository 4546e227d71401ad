/* SPDX-License-Identifier: MIT */
/* Time sources. Daemon logic never reads the clock itself: the loop reads it
 * once per iteration and passes `now_ms` down, so tests drive time. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). Any thread. */
uint64_t clock_wall_ms(void);
/* Monotonic milliseconds (CLOCK_MONOTONIC). Any thread. */
uint64_t clock_mono_ms(void);
/* Monotonic milliseconds that keep counting while the machine is suspended
 * (CLOCK_BOOTTIME): for leases, which must not outlive a sleep. Any thread. */
uint64_t clock_boot_ms(void);
/* Formats @epoch_ms as RFC 3339 in UTC with second precision
 * ("2025-01-31T12:00:00Z"); 0 gives "0001-01-01T00:00:00Z" (Go's zero time).
 * Returns @buf. @size must be at least 32. */
char *clock_rfc3339(uint64_t epoch_ms, char *buf, size_t size);
