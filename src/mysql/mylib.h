/* SPDX-License-Identifier: MIT */
/* Process-wide MariaDB Connector/C set-up. Main thread, before any other
 * thread starts / after they all stopped. */
#pragma once

int mylib_init(void);
void mylib_end(void);
