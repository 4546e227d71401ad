/* SPDX-License-Identifier: MIT */
/* Bounds that several modules must agree on, defined once. */
#pragma once

/* Longest name an operator stores, in bytes: an app key ("app" or
 * "app/store"), a skipped host, a service id. The backend's columns are
 * varchar(128) (sql/backend-schema.sql), and raft mode keeps the same bound
 * so that a name valid in one mode is valid in the other. */
#define FRENO_NAME_MAX 128
