/* SPDX-License-Identifier: MIT */
/* The HTTP server: libmicrohttpd's thread pool, fed connections by a
 * listener thread of ours (dual-stack socket), keep-alive. Requests go to
 * http_api_handle(); control requests wait for the loop parked, without
 * holding a thread. Bounded:
 * connections in total and per client address, time to receive a request,
 * idle time, and the loop's command queue. */
#pragma once

#include <stdint.h>

#include "core/err.h"

struct loop;
struct http_server;
struct history;

/* Descriptors the server itself uses besides its connections: the listening
 * socket and its thread's wake-up descriptor, and an epoll descriptor and a
 * wake-up descriptor per HTTP thread. */
#define HTTP_SERVER_FDS(threads) (2u + 2u * (threads))

struct http_server_params {
    uint16_t port;
    unsigned threads; /* 0: number of CPUs */
    struct loop *loop;
    unsigned max_connections;    /* in total; the caller fits it into the descriptor limit */
    unsigned max_per_address;    /* from one client address */
    uint32_t request_timeout_ms; /* from connect or the previous answer to a whole request */
    uint32_t idle_timeout_s;     /* no byte moved for this long: closed */
    uint32_t control_timeout_ms; /* a control request's wait for the loop */
    unsigned control_queue_max;  /* the loop's queue bound, for messages */
    struct history *history;     /* /metrics-history's source (borrowed); NULL: none */
    const char *listen_address;  /* NULL or "": every address (dual stack) */
    /* HTTPS when both are set (else plain HTTP); with client_ca_file every
     * request needs a client certificate it signed, else 403. */
    const char *tls_cert_file;
    const char *tls_key_file;
    const char *tls_client_ca_file;
};

/* The thread count @requested resolves to (0: number of CPUs). */
unsigned http_server_thread_count(unsigned requested);
/* Starts listening; returns NULL with @err set on failure. Main thread. */
struct http_server *http_server_start(const struct http_server_params *p, struct err *err);
/* Lowers (or raises back, up to max_connections) the connections the server
 * keeps: beyond @max new ones wait in the kernel's listen queue (one the
 * listener handed over just before is closed at once). For when the
 * descriptors the daemon needs for itself change. Any thread. */
void http_server_set_connection_budget(struct http_server *s, unsigned max);
/* Re-reads the TLS certificate, key and client CA files named at start and
 * serves them from the next handshake on; a file that does not load keeps
 * the running ones and returns negative with @err set. 0 without TLS. Loop
 * thread (SIGHUP). */
int http_server_reload_tls(struct http_server *s, struct err *err);
/* Answers parked control requests ("shutting down"), stops accepting,
 * closes connections, joins the threads, frees. NULL ok. Main thread, after
 * the loop stopped running. */
void http_server_stop(struct http_server *s);
