-- Task instances of one run id across DAGs (GET /dags/~/dagRuns/{run_id}/taskInstances, the
-- batch list's dag_run_ids) scanned every task instance: run_id leads no index of either table.
-- The run ids are now resolved to runs first (store/queries/read.ts), on this index, and their
-- task instances read on ux_task_instance (dag_run_id, …). dag_run holds a row per run, not per
-- task: the index costs a run's insert, never a task's state change.
ALTER TABLE dag_run ADD KEY ix_dag_run_run_id (run_id);
