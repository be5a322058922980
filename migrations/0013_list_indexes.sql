-- GET …/dagRuns lists a DAG's runs ordered by id: this index serves the filter and the order,
-- so a page (and the count) walks index entries instead of sorting the DAG's runs.
ALTER TABLE dag_run ADD KEY ix_dag_run_dag_id (dag_id, id);
