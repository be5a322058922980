-- Baton's initial schema. Times are DATETIME(6) in UTC; the application passes "now".

CREATE TABLE dag (
  dag_id VARCHAR(250) NOT NULL,
  is_paused TINYINT(1) NOT NULL DEFAULT 0,
  is_active TINYINT(1) NOT NULL DEFAULT 1,
  fileloc VARCHAR(700) NOT NULL,
  latest_version_hash CHAR(64) NULL,
  description TEXT NULL,
  schedule VARCHAR(255) NULL,
  timezone VARCHAR(64) NOT NULL DEFAULT 'UTC',
  tags JSON NULL,
  owners VARCHAR(255) NULL,
  max_active_runs INT NOT NULL DEFAULT 16,
  max_active_tasks INT NOT NULL DEFAULT 16,
  next_dagrun DATETIME(6) NULL,
  next_dagrun_data_interval_start DATETIME(6) NULL,
  next_dagrun_data_interval_end DATETIME(6) NULL,
  next_dagrun_create_after DATETIME(6) NULL,
  last_parsed_at DATETIME(6) NOT NULL,
  created_at DATETIME(6) NOT NULL,
  PRIMARY KEY (dag_id),
  KEY ix_dag_due (is_active, is_paused, next_dagrun_create_after),
  KEY ix_dag_fileloc (fileloc)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Bundled code, shared by every DAG of a file and by versions whose code did not change.
CREATE TABLE dag_code (
  code_hash CHAR(64) NOT NULL,
  code LONGTEXT NOT NULL,
  created_at DATETIME(6) NOT NULL,
  PRIMARY KEY (code_hash)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Immutable: a run is pinned to one of these for its whole life.
CREATE TABLE dag_version (
  id BIGINT NOT NULL AUTO_INCREMENT,
  dag_id VARCHAR(250) NOT NULL,
  version_hash CHAR(64) NOT NULL,
  code_hash CHAR(64) NOT NULL,
  structure LONGTEXT NOT NULL,
  created_at DATETIME(6) NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY ux_dag_version (dag_id, version_hash),
  KEY ix_dag_version_hash (version_hash)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- What the DAG processor last saw of each file, so unchanged files are not parsed again.
CREATE TABLE dag_file (
  fileloc VARCHAR(700) NOT NULL,
  content_hash CHAR(64) NOT NULL,
  dag_ids JSON NOT NULL,
  parsed_at DATETIME(6) NOT NULL,
  PRIMARY KEY (fileloc)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE import_error (
  id BIGINT NOT NULL AUTO_INCREMENT,
  fileloc VARCHAR(700) NOT NULL,
  code VARCHAR(64) NOT NULL,
  message TEXT NOT NULL,
  line INT NULL,
  stack_trace TEXT NULL,
  created_at DATETIME(6) NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY ux_import_error_file (fileloc)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE dag_run (
  id BIGINT NOT NULL AUTO_INCREMENT,
  dag_id VARCHAR(250) NOT NULL,
  run_id VARCHAR(250) NOT NULL,
  version_hash CHAR(64) NOT NULL,
  run_type VARCHAR(16) NOT NULL,
  state VARCHAR(16) NOT NULL,
  logical_date DATETIME(6) NULL,
  data_interval_start DATETIME(6) NULL,
  data_interval_end DATETIME(6) NULL,
  conf LONGTEXT NULL,
  note TEXT NULL,
  external_trigger TINYINT(1) NOT NULL DEFAULT 1,
  unfinished_tasks INT NOT NULL DEFAULT 0,
  queued_at DATETIME(6) NOT NULL,
  start_date DATETIME(6) NULL,
  end_date DATETIME(6) NULL,
  PRIMARY KEY (id),
  UNIQUE KEY ux_dag_run (dag_id, run_id),
  KEY ix_dag_run_state (state, id),
  KEY ix_dag_run_dag_state (dag_id, state),
  KEY ix_dag_run_dag_logical (dag_id, logical_date)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- up_* count this task's upstream tasks by terminal state, maintained by the transaction
-- that settles each upstream, so readiness is decided in O(1) per edge (no rescans).
CREATE TABLE task_instance (
  id BIGINT NOT NULL AUTO_INCREMENT,
  dag_run_id BIGINT NOT NULL,
  dag_id VARCHAR(250) NOT NULL,
  run_id VARCHAR(250) NOT NULL,
  task_id VARCHAR(250) NOT NULL,
  map_index INT NOT NULL DEFAULT -1,
  state VARCHAR(20) NOT NULL DEFAULT 'none',
  try_number INT NOT NULL DEFAULT 0,
  max_tries INT NOT NULL DEFAULT 0,
  priority_weight INT NOT NULL DEFAULT 1,
  pool VARCHAR(256) NOT NULL DEFAULT 'default_pool',
  pool_slots INT NOT NULL DEFAULT 1,
  queue VARCHAR(256) NOT NULL DEFAULT 'default',
  trigger_rule VARCHAR(40) NOT NULL DEFAULT 'all_success',
  upstream_total INT NOT NULL DEFAULT 0,
  up_success INT NOT NULL DEFAULT 0,
  up_skipped INT NOT NULL DEFAULT 0,
  up_failed INT NOT NULL DEFAULT 0,
  up_upstream_failed INT NOT NULL DEFAULT 0,
  up_removed INT NOT NULL DEFAULT 0,
  hostname VARCHAR(255) NULL,
  pid INT NULL,
  claim_token CHAR(32) NULL,
  heartbeat_at DATETIME(6) NULL,
  queued_at DATETIME(6) NULL,
  start_date DATETIME(6) NULL,
  end_date DATETIME(6) NULL,
  duration DOUBLE NULL,
  next_retry_at DATETIME(6) NULL,
  error TEXT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY ux_task_instance (dag_run_id, task_id, map_index),
  -- Claim: WHERE state='queued' AND queue=? ORDER BY priority_weight DESC, id (directions match).
  KEY ix_ti_claim (state, queue, priority_weight DESC, id),
  KEY ix_ti_retry (state, next_retry_at),
  KEY ix_ti_run_state (dag_run_id, state)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE xcom (
  dag_run_id BIGINT NOT NULL,
  task_id VARCHAR(250) NOT NULL,
  map_index INT NOT NULL DEFAULT -1,
  xcom_key VARCHAR(512) NOT NULL DEFAULT 'return_value',
  value LONGTEXT NULL,
  created_at DATETIME(6) NOT NULL,
  PRIMARY KEY (dag_run_id, task_id, map_index, xcom_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Liveness of scheduler, worker and DAG processor processes, for /health and zombie checks.
CREATE TABLE baton_process (
  id CHAR(32) NOT NULL,
  kind VARCHAR(32) NOT NULL,
  hostname VARCHAR(255) NOT NULL,
  pid INT NOT NULL,
  started_at DATETIME(6) NOT NULL,
  heartbeat_at DATETIME(6) NOT NULL,
  info TEXT NULL,
  PRIMARY KEY (id),
  KEY ix_process_kind (kind, heartbeat_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
