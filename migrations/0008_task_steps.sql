-- Durable steps: ctx.step(name, fn) results, memoized across the tries of a task instance.
CREATE TABLE task_step (
  task_instance_id BIGINT NOT NULL,
  step_name VARCHAR(255) NOT NULL,
  try_number INT NOT NULL,
  value LONGTEXT NULL,
  created_at DATETIME(6) NOT NULL,
  PRIMARY KEY (task_instance_id, step_name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
