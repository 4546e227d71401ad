/* SPDX-License-Identifier: MIT */
/* Open-files limit and descriptor budget (see fdlimit.h). */
#include "core/fdlimit.h"

#include <errno.h>
#include <string.h>
#include <sys/resource.h>

static uint64_t rlim_to_u64(rlim_t v)
{
    return v == RLIM_INFINITY ? UINT64_MAX : (uint64_t)v;
}

int fdlimit_raise(struct fdlimit_nofile *out, struct err *err)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
        return err_set(err, -errno, "getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
    out->soft_before = rlim_to_u64(rl.rlim_cur);
    out->hard = rlim_to_u64(rl.rlim_max);
    out->soft = out->soft_before;
    rlim_t target = rl.rlim_max;
    if (target == RLIM_INFINITY || target > FDLIMIT_RAISE_CAP)
        target = FDLIMIT_RAISE_CAP;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur >= target)
        return 0;
    rl.rlim_cur = target;
    /* EPERM when fs.nr_open is below the target: keep what we have. */
    if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
        out->soft = rlim_to_u64(target);
    return 0;
}

uint64_t fdlimit_reserve(uint64_t base, uint64_t per_host, uint64_t hosts)
{
    if (per_host != 0 && hosts > (UINT64_MAX - base) / per_host)
        return UINT64_MAX;
    return base + per_host * hosts;
}

unsigned fdlimit_http_connections(uint64_t nofile, uint64_t reserve, unsigned max_connections)
{
    if (nofile <= reserve)
        return 0;
    uint64_t room = nofile - reserve;
    return room < max_connections ? (unsigned)room : max_connections;
}
