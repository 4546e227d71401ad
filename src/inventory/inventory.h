/* SPDX-License-Identifier: MIT */
/* The dynamic inventory: every 10 s on the leader (and at once when this
 * node becomes leader), each cluster with an HAProxy, ProxySQL or Vitess
 * source re-reads its hosts off the check path and hands them to the
 * throttler. A source that fails leaves the cluster's previous hosts in
 * place; failures and recoveries are logged once per change. Also runs the
 * HTTP checks. Static clusters are the throttler's own. Loop thread. */
#pragma once

struct config;
struct err;
struct loop;
struct throttler;
struct inventory;

/* Starts the refresh timer and the HTTP checks. @cfg and @t are borrowed and
 * must outlive the inventory. Returns NULL with @err set if the HTTP client
 * cannot be created. */
struct inventory *inventory_new(struct loop *loop, const struct config *cfg, struct throttler *t,
                                struct err *err);
/* Stops everything and abandons refreshes in flight. NULL is fine. */
void inventory_free(struct inventory *inv);
