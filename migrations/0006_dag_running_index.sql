-- maxActiveTasks: claims count a DAG's running task instances; this index keeps that count
-- proportional to the (small) number running, not to the DAG's history.
ALTER TABLE task_instance ADD KEY ix_ti_dag_state (dag_id, state);
