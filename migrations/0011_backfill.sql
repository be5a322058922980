-- Backfill: one row per request (`backfill`), one row per logical date it covers
-- (`backfill_date`, planned when the backfill is created, in processing order), and the link
-- from each run a backfill created to it (dag_run.backfill_id).

CREATE TABLE backfill (
  id BIGINT NOT NULL AUTO_INCREMENT,
  dag_id VARCHAR(250) NOT NULL,
  from_date DATETIME(6) NOT NULL,
  to_date DATETIME(6) NOT NULL,
  reprocess_behavior VARCHAR(16) NOT NULL,
  max_active_runs INT NOT NULL,
  run_backwards TINYINT(1) NOT NULL DEFAULT 0,
  dag_run_conf LONGTEXT NULL,
  -- running (creating runs) | paused | cancelling (no new runs; waits for its active runs) |
  -- cancelled | completed. The scheduler claims running and cancelling rows.
  state VARCHAR(16) NOT NULL,
  total_dates INT NOT NULL,
  -- sort_ordinal of the next backfill_date to handle; total_dates once every date is handled.
  next_ordinal INT NOT NULL DEFAULT 0,
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  completed_at DATETIME(6) NULL,
  PRIMARY KEY (id),
  KEY ix_backfill_state (state, id),
  KEY ix_backfill_dag (dag_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- state: pending (sort_ordinal >= backfill.next_ordinal) | created (dag_run_id set) |
-- skipped (reason: exists | succeeded | in_flight | cancelled).
CREATE TABLE backfill_date (
  backfill_id BIGINT NOT NULL,
  sort_ordinal INT NOT NULL,
  logical_date DATETIME(6) NOT NULL,
  data_interval_start DATETIME(6) NOT NULL,
  data_interval_end DATETIME(6) NOT NULL,
  state VARCHAR(16) NOT NULL DEFAULT 'pending',
  reason VARCHAR(32) NULL,
  dag_run_id BIGINT NULL,
  PRIMARY KEY (backfill_id, sort_ordinal)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One automated run per (dag_id, logical_date): scheduled and backfill runs share this key, so
-- the scheduler and a backfill can never both create a run for one date (the loser of the race
-- gets a duplicate key and skips the date). A backfill that reprocesses a finished run first
-- marks it replaced (replaced_by_backfill_id), which takes it out of the key; the old run stays
-- as history. ux_dag_run_scheduled (0002) is unchanged: a replaced scheduled run still keeps the
-- scheduler from creating that scheduled run again. Manual runs are in neither key.
ALTER TABLE dag_run
  ADD COLUMN backfill_id BIGINT NULL,
  ADD COLUMN replaced_by_backfill_id BIGINT NULL,
  ADD COLUMN automated_logical_date DATETIME(6)
    AS (IF(run_type IN ('scheduled', 'backfill') AND replaced_by_backfill_id IS NULL, logical_date, NULL)) STORED,
  ADD UNIQUE KEY ux_dag_run_automated (dag_id, automated_logical_date),
  ADD KEY ix_dag_run_backfill (backfill_id, state);
