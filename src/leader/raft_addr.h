/* SPDX-License-Identifier: MIT */
/* Raft node addresses: RaftNodes and RaftBind entries ("host[:port]") made
 * canonical, and the stable node id every node derives from an address, so
 * that all nodes agree on ids without being told. Pure code; any thread. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* "255.255.255.255:65535" plus NUL, with room to spare. */
#define RAFT_ADDR_MAX 32

/* Makes @in canonical into @out ("a.b.c.d:port"): surrounding blanks are
 * trimmed and a missing port is filled from @default_port (as the original's
 * DefaultRaftPort). The host must be an IPv4 address, because libraft's TCP
 * transport parses nothing else (the original recommends IP addresses too).
 * Returns 0, or -EINVAL with @err naming the problem. */
int raft_addr_normalize(const char *in, int64_t default_port, char out[RAFT_ADDR_MAX],
                        struct err *err);

/* The node id of canonical address @addr: hash_stable64() of the text (FNV-1a
 * 64, so ids in existing data dirs stay valid), never 0. */
uint64_t raft_addr_id(const char *addr);
