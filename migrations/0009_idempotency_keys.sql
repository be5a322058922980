-- Idempotency-Key on POST …/dagRuns: the same key and body return the run created the first time.
ALTER TABLE dag_run
  ADD COLUMN idempotency_key VARCHAR(255) NULL,
  ADD COLUMN request_hash CHAR(64) NULL,
  ADD UNIQUE KEY ux_dag_run_idempotency (dag_id, idempotency_key);
