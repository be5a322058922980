-- max_active_tis_per_dag: the task's maxActiveTisPerDag (Airflow's max_active_tis_per_dag) from the
-- version its run was created with, copied when the task instance is created (as pool, pool_slots,
-- queue and priority_weight are): a claim reads it with the candidate row it reads anyway, and only
-- for candidates that have one counts the running instances of their task, under the DAG row lock
-- that already makes maxActiveTasks race-free. NULL: no limit (every existing task instance). No
-- index: the count reads the DAG's running tries (ix_ti_dag_pool), which maxActiveTasks bounds.
-- Not breaking: an older process beside it neither writes nor reads it (it claims without the
-- limit). Added last, nullable, no default: instant on MariaDB 10.3+ and MySQL 8.0.12+.
ALTER TABLE task_instance ADD COLUMN max_active_tis_per_dag INT NULL;
