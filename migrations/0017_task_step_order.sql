-- GET …/taskInstances/{task_id}/steps lists a task instance's durable steps in the order they
-- were recorded. InnoDB appends the primary key to this index, so it is (task_instance_id,
-- created_at, step_name): it serves the filter and the order (step_name breaks ties), and a
-- page walks index entries instead of sorting every step of the task with its value.
ALTER TABLE task_step ADD KEY ix_step_recorded (task_instance_id, created_at);
