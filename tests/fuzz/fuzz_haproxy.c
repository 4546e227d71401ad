/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the HAProxy stats CSV parser must accept any bytes
 * without reading or writing out of bounds or leaking. The first byte picks
 * the pool name among a few, so matching rows are reached. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/err.h"
#include "inventory/inv_haproxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const pools[] = {"p", "mysql_ro", "", "BACKEND"};
    const char *pool = pools[size > 0 ? data[0] % 4 : 0];
    /* An exact-size copy, so a read past the end is caught. */
    char *csv = malloc(size ? size : 1);
    if (csv == NULL)
        return 0;
    memcpy(csv, data, size);
    struct inv_hosts hosts = {0};
    struct err err = {0};
    (void)inv_haproxy_parse(csv, size, pool, 3306, &hosts, &err);
    for (size_t i = 0; i < hosts.len; i++)
        if (hosts.v[i].port == 0 || hosts.v[i].host[0] == '\0')
            abort();
    inv_hosts_deinit(&hosts);
    free(csv);
    return 0;
}
