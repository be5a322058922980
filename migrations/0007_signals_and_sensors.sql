-- Signals: durable external events for a run (Temporal's signals). A signal that arrives
-- before its task waits is kept until a task consumes it; signal_id makes sending idempotent.
CREATE TABLE run_signal (
  id BIGINT NOT NULL AUTO_INCREMENT,
  dag_run_id BIGINT NOT NULL,
  name VARCHAR(255) NOT NULL,
  signal_id VARCHAR(255) NULL,
  payload LONGTEXT NULL,
  created_at DATETIME(6) NOT NULL,
  consumed_by BIGINT NULL,
  consumed_at DATETIME(6) NULL,
  PRIMARY KEY (id),
  UNIQUE KEY ux_signal_id (dag_run_id, signal_id),
  KEY ix_signal_pending (dag_run_id, name, consumed_by, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Every poke of a reschedule-mode sensor that did not succeed (Airflow's task_reschedule).
CREATE TABLE task_reschedule (
  id BIGINT NOT NULL AUTO_INCREMENT,
  task_instance_id BIGINT NOT NULL,
  try_number INT NOT NULL,
  start_date DATETIME(6) NOT NULL,
  end_date DATETIME(6) NOT NULL,
  reschedule_date DATETIME(6) NOT NULL,
  PRIMARY KEY (id),
  KEY ix_reschedule_ti (task_instance_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- deferred_on: the signal a deferred task waits for; next_check_at: when its timeout fires.
-- first_poke_at / poke_count: a sensor's timeout counts from its first poke, across reschedules.
ALTER TABLE task_instance
  ADD COLUMN deferred_on VARCHAR(255) NULL,
  ADD COLUMN next_check_at DATETIME(6) NULL,
  ADD COLUMN first_poke_at DATETIME(6) NULL,
  ADD COLUMN poke_count INT NOT NULL DEFAULT 0,
  ADD KEY ix_ti_deferred (state, next_check_at),
  ADD KEY ix_ti_waiting (dag_run_id, state, deferred_on);
