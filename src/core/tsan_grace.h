/* SPDX-License-Identifier: MIT */
/* liburcu's grace periods and call_rcu hand-off are invisible to
 * ThreadSanitizer. A publisher that frees through call_rcu marks
 * GRACE_BEFORE_FREE() where a reader's section ends (and where it publishes),
 * and GRACE_ELAPSED() in the callback that frees: TSan then sees every
 * read-side section, and the publisher's writes, come before the free.
 * Nothing without TSan. Include in one .c file per token. */
#pragma once

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
static char grace_token;
#define GRACE_BEFORE_FREE() __tsan_release(&grace_token)
#define GRACE_ELAPSED()     __tsan_acquire(&grace_token)
#else
#define GRACE_BEFORE_FREE() ((void)0)
#define GRACE_ELAPSED()     ((void)0)
#endif
