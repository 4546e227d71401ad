/* SPDX-License-Identifier: MIT */
/* HTTP checks of probed hosts: every 5 s on the leader, for each cluster
 * with HttpCheckPort > 0, GET http://<host>:<HttpCheckPort>/<HttpCheckPath>
 * once per host name (1 s timeout). A 404 leaves the host out of the
 * cluster's aggregation; any other answer, or none, counts it again. Counts
 * httpcheck.skip|error|200|404|other. Loop thread. */
#pragma once

#include <stdint.h>

struct config;
struct httpc;
struct loop;
struct throttler;
struct httpcheck;

/* The URL checked for @host (IPv6 without brackets): "http://host:port/path",
 * a leading '/' of @path is not doubled. Returns a new string. Pure. */
char *httpcheck_url(const char *host, int64_t port, const char *path);

/* Starts the 5 s timer. Everything passed is borrowed and must outlive the
 * returned object. */
struct httpcheck *httpcheck_new(struct loop *loop, const struct config *cfg, struct throttler *t,
                                struct httpc *http);
/* Stops the timer and abandons checks in flight. NULL is fine. */
void httpcheck_free(struct httpcheck *hc);
