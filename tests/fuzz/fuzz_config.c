/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the config loader: any bytes go through
 * config_load_string(), and whatever comes back is freed, so the sanitizers
 * see every allocation and access. Build with -DFUZZ=ON and CC=clang. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = xmalloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';

    struct config_diag diag = {0};
    struct config *cfg = NULL;
    if (config_load_string(text, "fuzz.json", &cfg, &diag) == 0) {
        /* Touch the result the way the daemon does. */
        for (size_t i = 0; i < cfg->clusters_len; i++) {
            if (config_find_cluster(cfg, cfg->clusters[i].name) != &cfg->clusters[i])
                abort();
        }
    }
    config_free(cfg);
    config_diag_deinit(&diag);
    free(text);
    return 0;
}
