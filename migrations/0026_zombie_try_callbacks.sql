-- A try the scheduler reaps as a zombie (its worker died or stopped heartbeating) ended with no
-- word in its log and ran none of its task's callbacks: the worker that would have written
-- both is gone, and the scheduler never runs user code nor reaches the dead host's log file.

-- epilogue: lines written after the try ended, by others than its process: the reason a
-- scheduler reaped it, then what its callbacks, run by another worker, logged. The API serves a
-- try's log as content, then its file, then this, so the log ends with why it ended. Added last
-- and NULL: instant on MariaDB 10.3+ and MySQL 8.0.12+, whatever the table's size.
ALTER TABLE task_log ADD COLUMN epilogue MEDIUMTEXT NULL;

-- task_callback: onRetry / onFailure a reaped try owes, written in the transaction that reaps
-- it (so a scheduler that dies after the commit loses nothing, and only the scheduler that won
-- the row lock writes it: one row per try, its key). A worker serving the task's queue claims it
-- under a lease (claimed_at), runs it in a child and deletes it with the lease as fence, like a
-- run's callback (0020): once normally, again only if that worker dies mid-callback. Rows exist
-- only while owed, so the table stays small and the workers' poll cheap.
CREATE TABLE task_callback (
  task_instance_id BIGINT NOT NULL,
  try_number INT NOT NULL,
  queue VARCHAR(256) NOT NULL,
  callback VARCHAR(20) NOT NULL,
  error TEXT NOT NULL,
  created_at DATETIME(6) NOT NULL,
  claimed_at DATETIME(6) NULL,
  PRIMARY KEY (task_instance_id, try_number),
  KEY ix_task_callback_queue (queue, claimed_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
