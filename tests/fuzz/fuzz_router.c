/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the router and the JSON string/number formatters must
 * take any path without reading or writing out of bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/jsonfmt.h"
#include "http/router.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *path = malloc(size + 1);
    if (path == NULL)
        return 0;
    memcpy(path, data, size);
    path[size] = '\0';
    struct route *r = malloc(sizeof(*r));
    if (r != NULL) {
        if (router_match((size & 1) ? "GET" : "HEAD", path, r) == ROUTE_OK) {
            for (size_t i = 0; i < r->nparams; i++) {
                char buf[256];
                jsonfmt_string(buf, sizeof(buf), r->value[i]);
                (void)route_param(r, r->name[i]);
            }
        }
        free(r);
    }
    char out[64];
    if (size >= sizeof(double)) {
        double d;
        memcpy(&d, data, sizeof(d));
        jsonfmt_number(out, sizeof(out), d);
    }
    free(path);
    return 0;
}
