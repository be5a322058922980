-- Logs of short tries (executor/tryLog.ts): written by the worker in the transaction that
-- records the try, so they need no file on the worker's host and every API host can read
-- them. Longer tries write logs/…/attempt=N.log as before; the API serves this text first,
-- then the file. A try's pokes (reschedule-mode sensors) append to the same row.
CREATE TABLE task_log (
  task_instance_id BIGINT NOT NULL,
  try_number INT NOT NULL,
  content MEDIUMTEXT NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  PRIMARY KEY (task_instance_id, try_number)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
