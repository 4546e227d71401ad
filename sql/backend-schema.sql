-- SPDX-License-Identifier: MIT
-- Tables of freno's MySQL backend (leader election, service health and the
-- operator state). `freno --init-backend --config FILE` runs these same
-- statements (and creates the schema if it is missing); or run this file:
--   mysql freno_backend < sql/backend-schema.sql
-- The BackendMySQLUser account needs SELECT, INSERT, UPDATE and DELETE on
-- these tables. The columns are those of the Go original, so both can share
-- one backend. expires_at of throttled_apps must accept NULL (never expires):
-- it is spelled out, because with explicit_defaults_for_timestamp off a bare
-- TIMESTAMP column would be NOT NULL.

CREATE TABLE IF NOT EXISTS service_election (
  domain varchar(32) NOT NULL,
  share_domain varchar(32) NOT NULL,
  service_id varchar(128) NOT NULL,
  last_seen_active timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (domain),
  KEY share_domain_idx (share_domain,last_seen_active)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS service_health (
  service_id varchar(128) NOT NULL,
  domain varchar(32) NOT NULL,
  share_domain varchar(32) NOT NULL,
  last_seen_active timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (service_id),
  KEY last_seen_active_idx (last_seen_active)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS throttled_apps (
  app_name varchar(128) NOT NULL,
  throttled_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
  expires_at timestamp NULL DEFAULT NULL,
  ratio double,
  PRIMARY KEY (app_name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS skipped_hosts (
  host_name varchar(128) NOT NULL,
  skipped_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
  expires_at timestamp NOT NULL,
  PRIMARY KEY (host_name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Per-app rules (an extension; docs/ha.md#app-rules). Optional: a backend
-- without this table works as before, with no rules. The Go original never
-- reads it. rule is the rule's JSON text, e.g. {"Thresholds":{"default":2}};
-- expires_at NULL: never expires.
CREATE TABLE IF NOT EXISTS app_rules (
  app_name varchar(128) NOT NULL,
  rule varchar(1024) NOT NULL,
  ruled_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
  expires_at timestamp NULL DEFAULT NULL,
  PRIMARY KEY (app_name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- The audit trail of control requests (an extension; docs/ha.md#audit-log).
-- Optional: without it the daemon logs once and keeps the trail in its log.
-- One row per control command a node carried out or refused: at_ms (epoch
-- ms), the node (service_id), who asked (token name or "-", peer address,
-- X-Forwarded-For), what, its parameters (a JSON object), the HTTP status
-- and message. Text is stored escaped (control characters and bytes that
-- are not UTF-8 as \uXXXX). The leader deletes rows older than
-- AuditLogMaxDays (default 90) and all but the newest AuditLogMaxRows
-- (default 100000) every minute.
CREATE TABLE IF NOT EXISTS audit_log (
  id bigint unsigned NOT NULL AUTO_INCREMENT,
  at_ms bigint unsigned NOT NULL,
  service_id varchar(128) NOT NULL,
  who varchar(40) NOT NULL,
  peer varchar(64) NOT NULL,
  forwarded varchar(128) NOT NULL,
  what varchar(32) NOT NULL,
  params varchar(384) NOT NULL,
  status smallint unsigned NOT NULL,
  message varchar(200) NOT NULL,
  PRIMARY KEY (id),
  KEY at_ms_idx (at_ms)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
