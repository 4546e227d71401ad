/* SPDX-License-Identifier: MIT */
/* The live MySQL server the client-library tests query: FRENO_TEST_MYSQL_PORT
 * on 127.0.0.1, user FRENO_TEST_MYSQL_USER (default root), password
 * FRENO_TEST_MYSQL_PASSWORD (default empty). scripts/test.sh starts the
 * topology and sets them. Without the port these tests FAIL, so that a run
 * without a server is never counted as passed; set FRENO_TEST_MYSQL_OPTIONAL=1
 * to skip them instead when working on something else. Include after
 * <cmocka.h>. */
#pragma once

#include <stdint.h>
#include <stdlib.h>

static inline uint16_t live_mysql_port(void)
{
    const char *s = getenv("FRENO_TEST_MYSQL_PORT");
    if (s != NULL && *s != '\0') {
        char *end;
        unsigned long p = strtoul(s, &end, 10);
        if (*end != '\0' || p == 0 || p > 65535)
            fail_msg("FRENO_TEST_MYSQL_PORT=%s is not a port", s);
        return (uint16_t)p;
    }
    const char *opt = getenv("FRENO_TEST_MYSQL_OPTIONAL");
    if (opt != NULL && opt[0] == '1')
        skip();
    fail_msg("FRENO_TEST_MYSQL_PORT is not set: these tests query a live server (scripts/test.sh "
             "starts one); set FRENO_TEST_MYSQL_OPTIONAL=1 to skip them");
    return 0;
}

static inline const char *live_mysql_user(void)
{
    const char *u = getenv("FRENO_TEST_MYSQL_USER");
    return u != NULL && *u != '\0' ? u : "root";
}

static inline const char *live_mysql_password(void)
{
    const char *p = getenv("FRENO_TEST_MYSQL_PASSWORD");
    return p != NULL ? p : "";
}
