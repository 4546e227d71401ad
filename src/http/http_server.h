/* SPDX-License-Identifier: MIT */
/* The HTTP server: libmicrohttpd with its own thread pool, dual-stack
 * listening socket, keep-alive. Requests go to http_api_handle(). */
#pragma once

#include <stdint.h>

#include "core/err.h"

struct loop;
struct http_server;

struct http_server_params {
    uint16_t port;
    unsigned threads; /* 0: number of CPUs */
    struct loop *loop;
};

/* Starts listening; returns NULL with @err set on failure. Main thread. */
struct http_server *http_server_start(const struct http_server_params *p, struct err *err);
/* Stops accepting, closes connections, joins the threads, frees. NULL ok. */
void http_server_stop(struct http_server *s);
