-- Pools limit how many task slots run at once across all workers (Airflow's pools).
-- occupied_slots is maintained by the transactions that move tasks into and out of
-- `running`, under the pool row lock; the scheduler reconciles it from task_instance.
CREATE TABLE pool (
  name VARCHAR(256) NOT NULL,
  slots INT NOT NULL,
  occupied_slots INT NOT NULL DEFAULT 0,
  description TEXT NULL,
  PRIMARY KEY (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

INSERT INTO pool (name, slots, description) VALUES ('default_pool', 128, 'Default pool');

-- Running tasks by pool, for reconciling occupied_slots without a table scan.
ALTER TABLE task_instance ADD KEY ix_ti_state_pool (state, pool);
