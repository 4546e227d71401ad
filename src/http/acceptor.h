/* SPDX-License-Identifier: MIT */
/* The HTTP listening socket and the thread that accepts from it. Each
 * accepted connection goes to a callback, which hands it to a worker: the
 * HTTP library's own workers each take a run of up to ten connections at
 * once from a shared socket, so a burst of connections (a client's pool
 * opening) could all land on one worker and leave the others idle.
 * Out of descriptors or memory, the thread waits ACCEPTOR_RETRY_MS between
 * tries instead of spinning, and says so in the log at most once a minute. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/err.h"

/* A try to accept again after the system refused for lack of descriptors or
 * memory; the connections wait in the kernel's queue meanwhile. */
#define ACCEPTOR_RETRY_MS 50u
/* How often the thread asks again whether there is room, while there is
 * none; the connections wait in the kernel's queue meanwhile. */
#define ACCEPTOR_PAUSE_MS 1u

struct acceptor;

/* Takes the accepted non-blocking socket @fd (ownership included) with its
 * client address. The acceptor's thread. */
typedef void acceptor_fn(int fd, const struct sockaddr *addr, socklen_t addrlen, void *arg);
/* Whether a connection may be accepted now; asked before each one. */
typedef bool acceptor_room_fn(void *arg);

/* Binds and listens on @address (an IP literal or a host name, its first
 * address; NULL or "": every IPv4 and IPv6 address) port @port (0: any),
 * with @backlog connections queued in the kernel. NULL with @err set on
 * failure, with the system's reason. Nothing is accepted before
 * acceptor_start(). */
struct acceptor *acceptor_new(const char *address, uint16_t port, unsigned backlog,
                              struct err *err);
/* The port listened on. */
uint16_t acceptor_port(const struct acceptor *a);
/* Starts the accepting thread, which calls @fn for each connection while
 * @room says there is room for one. */
int acceptor_start(struct acceptor *a, acceptor_fn *fn, acceptor_room_fn *room, void *arg,
                   struct err *err);
/* Stops the thread (a connection being accepted is handed over first),
 * closes the listening socket and frees @a. NULL is fine. */
void acceptor_free(struct acceptor *a);
