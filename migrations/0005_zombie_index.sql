-- Zombie reaping: the scheduler looks for running tries whose heartbeat is older than the
-- timeout (WHERE state = 'running' AND heartbeat_at < ? ORDER BY heartbeat_at ... SKIP LOCKED);
-- this index serves the range and the order, so the query never scans the table.
ALTER TABLE task_instance ADD KEY ix_ti_zombie (state, heartbeat_at);
