/* SPDX-License-Identifier: MIT */
/* The notification protocol written from its documentation: systemd keeps
 * the datagram format and the environment variables stable so that a
 * service need not link libsystemd to speak it. */
#include "service/notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

int notify_send(const char *state)
{
    const char *name = getenv("NOTIFY_SOCKET");
    if (name == NULL || name[0] == '\0')
        return 0;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(name);
    if (name[0] != '/' && name[0] != '@')
        return -EINVAL;
    /* A path needs its NUL inside sun_path; an abstract name is the bytes
     * after a leading NUL, without a terminator. */
    if (len > sizeof(sa.sun_path) - (name[0] == '/'))
        return -ENAMETOOLONG;
    memcpy(sa.sun_path, name, len);
    if (name[0] == '@')
        sa.sun_path[0] = '\0';
    socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    if (name[0] == '/')
        salen++; /* with the NUL */

    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return -errno;
    size_t n = strlen(state);
    ssize_t sent = sendto(fd, state, n, MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
    int rc = sent == -1 ? -errno : (size_t)sent == n ? 1 : -EMSGSIZE;
    close(fd);
    return rc;
}

/* A positive decimal number into *@out: -EINVAL for anything else (a sign,
 * junk, 0), -ERANGE past UINT64_MAX. */
static int parse_positive(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (s[0] == '\0')
        return -EINVAL;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    if (v == 0)
        return -EINVAL;
    *out = v;
    return 0;
}

int notify_watchdog_usec(uint64_t *usec)
{
    const char *s = getenv("WATCHDOG_USEC");
    if (s == NULL)
        return 0;
    uint64_t v;
    int rc = parse_positive(s, &v);
    if (rc < 0)
        return rc;
    /* systemd's "infinity" is UINT64_MAX: not an interval. */
    if (v == UINT64_MAX)
        return -ERANGE;
    const char *p = getenv("WATCHDOG_PID");
    if (p != NULL) {
        uint64_t pid;
        rc = parse_positive(p, &pid);
        if (rc < 0)
            return rc;
        if (pid != (uint64_t)getpid())
            return 0;
    }
    *usec = v;
    return 1;
}
