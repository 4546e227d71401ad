/* SPDX-License-Identifier: MIT */
/* The daemon: owns the loop, the config and every module, wires them
 * together, and runs until SIGTERM/SIGINT. Main thread. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct config;
struct config_origin;

struct app_params {
    struct config *cfg; /* ownership passes to app_run */
    /* Where @cfg came from, for SIGHUP to load again; borrowed, outlives
     * app_run. NULL: SIGHUP keeps the running config. */
    const struct config_origin *origin;
    bool force_leadership;
    uint64_t nofile; /* the open-files soft limit the process runs with */
};

/* Runs the daemon; returns the process exit code. */
int app_run(const struct app_params *p);
