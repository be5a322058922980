-- abandoned_try: a try ended from outside (its run cancelled or timed out, the task marked or
-- cleared) while its worker may still run its code: that worker aborts ctx.signal at its next
-- heartbeat and kills the process only after the kill grace. A saga's compensations wait until no
-- try of their run is listed here (store/transitions/abandonedTries.ts): undoing a booking while
-- the cancelled shipment still winds down would let it go out after the refund. The worker
-- deletes its row once the try's process has ended; a scheduler deletes the rows of workers that
-- stopped heartbeating (baton_process), whose processes are presumed dead. A table of its own, not
-- a task_instance column: a task instance may have two such tries at once (cleared, claimed again,
-- ended again), and no index is added to task_instance, whose inserts and claims are the hot path.
-- Not breaking: an older process beside it neither writes nor reads it (its compensations do not wait).
CREATE TABLE abandoned_try (
  task_instance_id BIGINT NOT NULL,
  try_number INT NOT NULL,
  dag_run_id BIGINT NOT NULL,
  worker_id CHAR(32) NOT NULL,
  abandoned_at DATETIME(6) NOT NULL,
  PRIMARY KEY (task_instance_id, try_number),
  KEY ix_abandoned_try_run (dag_run_id),
  KEY ix_abandoned_try_worker (worker_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
