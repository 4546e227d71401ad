/* SPDX-License-Identifier: MIT */
/* mysql_library_init must run once before threads use the connector. */
#include "mysql/mylib.h"

#include <errno.h>
#include <stddef.h>
#include <mysql.h>

int mylib_init(void)
{
    return mysql_library_init(0, NULL, NULL) == 0 ? 0 : -EIO;
}

void mylib_end(void)
{
    mysql_library_end();
}
