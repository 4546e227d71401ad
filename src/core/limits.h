/* SPDX-License-Identifier: MIT */
/* Bounds that several modules must agree on, defined once. */
#pragma once

/* Longest name an operator stores, in bytes: an app key ("app" or
 * "app/store"), a skipped host, a service id. The backend's columns are
 * varchar(128) (sql/backend-schema.sql), and raft mode keeps the same bound
 * so that a name valid in one mode is valid in the other. */
#define FRENO_NAME_MAX 128

/* Metrics of one cluster: the one its MetricQuery measures, and at most
 * FRENO_METRICS_MAX - 1 more from its Metrics (docs/config.md#metrics).
 * Each costs one connection per host and a few hundred bytes of every check
 * answer that lists them, which is sized for this many. */
#define FRENO_METRICS_MAX 9
/* Longest name of one of a cluster's Metrics, in bytes. */
#define FRENO_METRIC_NAME_MAX 32
/* The name checks, answers and metric names use for the metric a cluster's
 * MetricQuery measures; so none of its Metrics may take it. */
#define FRENO_METRIC_DEFAULT "default"
