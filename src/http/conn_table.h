/* SPDX-License-Identifier: MIT */
/* The open HTTP connections, one fixed slot each, so that a thread of our
 * own can close those whose next request does not arrive in time (the HTTP
 * library only knows an idle timeout, which every byte resets). Lock-free:
 * slots are claimed and released with atomics, and a socket is touched by the
 * reaper only while its slot is held, which conn_table_release() waits out;
 * the library closes a socket only after reporting it closed, so the reaper
 * never touches a descriptor number that was reused. Any thread. */
#pragma once

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

struct conn_table;
struct conn_slot;

/* Called by conn_table_reap() for each connection that is too slow. */
typedef void conn_table_reap_fn(int fd, void *arg);

/* A table for at most @size connections (at least 1). */
struct conn_table *conn_table_new(size_t size);
/* Frees @t (NULL is fine); every slot must be released. */
void conn_table_free(struct conn_table *t);

/* Claims a slot for the connection on socket @fd, opened at @now_ms and
 * waiting for its first request. Returns NULL when every slot is taken. */
struct conn_slot *conn_table_claim(struct conn_table *t, int fd, uint64_t now_ms);
/* Gives @s back (NULL is fine), first waiting for a reaper working on it.
 * Once it returns, the table never touches the socket again. */
void conn_table_release(struct conn_table *t, struct conn_slot *s);
/* Connections claimed now. */
size_t conn_table_live(const struct conn_table *t);

/* The connection's request has arrived whole: no bound applies until
 * conn_slot_waiting(). Lock-free, allocation-free. */
void conn_slot_busy(struct conn_slot *s);
/* The connection finished a request at @now_ms: its next one must arrive
 * whole within the bound from now on. */
void conn_slot_waiting(struct conn_slot *s, uint64_t now_ms);

/* Calls @fn(fd, @arg) for every connection waiting since more than
 * @limit_ms before @now_ms, once per wait. Returns how many. */
size_t conn_table_reap(struct conn_table *t, uint64_t now_ms, uint64_t limit_ms,
                       conn_table_reap_fn *fn, void *arg);

/* What a connection's client certificate was found to be, once: the
 * handshake happens once per connection, so the verification does too. */
enum conn_tls_verdict { CONN_TLS_UNKNOWN, CONN_TLS_OK, CONN_TLS_REFUSED };
/* The verdict stored for the connection of @s (CONN_TLS_UNKNOWN after a
 * claim). The connection's own thread. */
enum conn_tls_verdict conn_slot_tls_verdict(const struct conn_slot *s);
void conn_slot_set_tls_verdict(struct conn_slot *s, enum conn_tls_verdict v);

/* The client address of @s's connection as text ("10.0.0.1", "::1"): empty
 * after a claim, then written once by the connection's own thread, which
 * alone reads it; a keep-alive connection formats it once, not per request. */
#define CONN_PEER_SIZE INET6_ADDRSTRLEN
char *conn_slot_peer(struct conn_slot *s);
