/* SPDX-License-Identifier: MIT */
/* The service manager's notification protocol, as systemd documents it as a
 * stable interface (sd_notify(3), sd_watchdog_enabled(3)): one datagram of
 * newline-separated KEY=VALUE lines on the AF_UNIX socket named by
 * $NOTIFY_SOCKET (a path, or '@' and a name in the abstract namespace), and
 * the watchdog interval in $WATCHDOG_USEC for the process $WATCHDOG_PID
 * names. The environment is read on every call and never changed. Any
 * thread. */
#pragma once

#include <stdint.h>

/* Sends @state. Returns 1 when sent, 0 when NOTIFY_SOCKET is unset or empty
 * (no service manager listens), or -errno: -EINVAL when NOTIFY_SOCKET is
 * neither an absolute path nor an abstract name, -ENAMETOOLONG when it does
 * not fit an AF_UNIX address, or the socket's error. */
int notify_send(const char *state);

/* Reads the watchdog interval the service manager expects pings within.
 * Returns 1 with *@usec set, 0 when there is no watchdog for this process
 * (WATCHDOG_USEC unset, or WATCHDOG_PID naming another process), or -EINVAL
 * when WATCHDOG_USEC or WATCHDOG_PID is not a positive decimal number, or
 * -ERANGE when it is too large. */
int notify_watchdog_usec(uint64_t *usec);
