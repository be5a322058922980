-- GET /dags/{dag_id}/dagRuns/~/taskInstances lists one DAG's task instances across its runs,
-- ordered by id: this index serves the filter and the order (dag_id never changes, so the
-- index costs the hot path nothing beyond the insert).
ALTER TABLE task_instance ADD KEY ix_ti_dag_id (dag_id, id);
