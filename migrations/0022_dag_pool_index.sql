-- A DAG at its maxActiveTasks with thousands of queued tries ahead of every other DAG's (one
-- big fan-out under the default limit of 16) hid those other DAGs from claims: a claim reads
-- ix_ti_claim (state, queue, priority_weight DESC, id) in priority order, and reading past the
-- full DAG's tries walked them one by one (bounded at 2,000, so a longer backlog starved the
-- rest). Keyed by DAG first, a claim reads the next tries of each DAG that still has room, in
-- each pool with free slots, directly (store/transitions/claimTasks.ts), whatever another DAG
-- or a full pool has queued.
-- The queue is left out: with it the key passes InnoDB's 3,072 bytes (varchar(250) and two
-- varchar(256) in utf8mb4); claims check it on the row.
-- It replaces ix_ti_dag_state (dag_id, state), its prefix, which still serves the running count
-- per DAG and deleteDag: a state change rewrites the same number of secondary indexes.
ALTER TABLE task_instance
  DROP KEY ix_ti_dag_state,
  ADD KEY ix_ti_dag_pool (dag_id, state, pool, priority_weight DESC, id);
