-- Every state change of a task instance rewrote each secondary index that contains `state`:
-- eight of them, three times per task (queued, running, ended), which made MariaDB the
-- busiest process in the fan-out benchmark. The time-keyed indexes below only serve rows
-- whose time column is set, and that column is set only in the state they look for
-- (next_retry_at: up_for_retry / up_for_reschedule; next_check_at: deferred with a timeout).
-- Keyed on the time column alone, a state change that leaves the
-- column NULL no longer touches them; their queries keep `state = …` as a filter and read
-- the same range in the same order (EXPLAIN: range, no filesort).
-- ix_ti_run_state (dag_run_id, state) is a prefix of ix_ti_waiting (dag_run_id, state,
-- deferred_on), which serves the same lookups.
ALTER TABLE task_instance
  DROP KEY ix_ti_retry,
  DROP KEY ix_ti_deferred,
  DROP KEY ix_ti_run_state,
  ADD KEY ix_ti_retry (next_retry_at),
  ADD KEY ix_ti_deferred (next_check_at);
-- ix_ti_zombie (state, heartbeat_at) stays: heartbeat_at changes on every claim and finish
-- anyway, and on small tables the optimizer scans instead of using (heartbeat_at) alone.
