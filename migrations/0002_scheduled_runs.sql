-- Scheduled runs: what the scheduler needs to create them from the dag table alone, a key
-- that makes a scheduled run for (dag_id, logical_date) impossible to create twice (even by
-- two schedulers at once), and run deadlines for dagrunTimeout.

-- The timetable inputs besides schedule/timezone, so the parser can tell when the next run
-- must be recomputed and the scheduler can plan without loading a DAG version.
ALTER TABLE dag
  ADD COLUMN start_date DATETIME(6) NULL AFTER timezone,
  ADD COLUMN end_date DATETIME(6) NULL AFTER start_date,
  ADD COLUMN catchup TINYINT(1) NOT NULL DEFAULT 0 AFTER end_date;

-- MySQL has no partial unique index: a generated column that is NULL for every run that is not
-- scheduled (NULLs never collide) carries the key. Also how the latest scheduled run is found.
-- timeout_at = start_date + the pinned version's dagrunTimeout, set when the run starts.
ALTER TABLE dag_run
  ADD COLUMN scheduled_logical_date DATETIME(6) AS (IF(run_type = 'scheduled', logical_date, NULL)) STORED,
  ADD COLUMN timeout_at DATETIME(6) NULL,
  ADD UNIQUE KEY ux_dag_run_scheduled (dag_id, scheduled_logical_date),
  ADD KEY ix_dag_run_timeout (state, timeout_at);

-- Parse every DAG file again once, so DAGs recorded before this migration get start_date,
-- end_date, catchup and their next run (the processor skips files whose hash it knows).
UPDATE dag_file SET content_hash = REPEAT('0', 64);
