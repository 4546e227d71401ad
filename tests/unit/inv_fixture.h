/* SPDX-License-Identifier: MIT */
/* What the inventory parsers' tests share: reading a captured answer from
 * data/inventory/, and comparing a host list with "host:port" strings.
 * Include after <cmocka.h>. */
#pragma once

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inventory/inv_hosts.h"

/* The fixture @name from data/inventory/ beside this file, NUL-terminated
 * (at most 1 MiB); its length in @len. Free it. */
static inline char *inv_fixture_read(const char *name, size_t *len)
{
    const char *slash = strrchr(__FILE__, '/');
    int dir_len = slash ? (int)(slash - __FILE__) : 1;
    char path[1024];
    snprintf(path, sizeof(path), "%.*s/data/inventory/%s", dir_len, slash ? __FILE__ : ".", name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    *len = fread(buf, 1, (1 << 20) - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

/* Asserts that @l holds exactly the "host:port" strings in @want, in order. */
static inline void inv_expect_hosts(const struct inv_hosts *l, const char *const *want, size_t n)
{
    assert_int_equal(l->len, n);
    for (size_t i = 0; i < n; i++) {
        char got[300];
        snprintf(got, sizeof(got), "%s:%u", l->v[i].host, (unsigned)l->v[i].port);
        assert_string_equal(got, want[i]);
    }
}
