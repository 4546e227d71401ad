/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the vtctld tablet list parser must accept any bytes
 * without reading or writing out of bounds or leaking, and only ever return
 * hosts with a name and a port. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/err.h"
#include "inventory/inv_vitess.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char cell1[] = "zone1", cell2[] = " ";
    static char *cells[] = {cell1, cell2};
    struct config_strv cv = {.v = cells, .len = size > 0 && (data[0] & 1) ? 2 : 0};
    char *json = malloc(size ? size : 1);
    if (json == NULL)
        return 0;
    memcpy(json, data, size);
    struct inv_hosts hosts = {0};
    struct err err = {0};
    (void)inv_vitess_parse(json, size, &cv, &hosts, &err);
    for (size_t i = 0; i < hosts.len; i++)
        if (hosts.v[i].port == 0 || hosts.v[i].host[0] == '\0')
            abort();
    inv_hosts_deinit(&hosts);
    free(json);
    return 0;
}
