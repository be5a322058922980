-- Append-only history of every state change of a run or task instance. Written by triggers,
-- so each row is added in the very transaction that makes the change, whatever code path
-- made it. @baton_actor names the process (set on each of Baton's connections).
CREATE TABLE event_log (
  id BIGINT NOT NULL AUTO_INCREMENT,
  at DATETIME(6) NOT NULL,
  kind VARCHAR(8) NOT NULL,
  dag_id VARCHAR(250) NOT NULL,
  run_id VARCHAR(250) NOT NULL,
  dag_run_id BIGINT NOT NULL,
  task_id VARCHAR(250) NULL,
  map_index INT NULL,
  try_number INT NULL,
  from_state VARCHAR(20) NULL,
  to_state VARCHAR(20) NOT NULL,
  actor VARCHAR(255) NULL,
  hostname VARCHAR(255) NULL,
  PRIMARY KEY (id),
  KEY ix_event_run (dag_run_id, id),
  KEY ix_event_dag (dag_id, id),
  KEY ix_event_at (at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TRIGGER trg_task_instance_created AFTER INSERT ON task_instance FOR EACH ROW
  INSERT INTO event_log (at, kind, dag_id, run_id, dag_run_id, task_id, map_index, try_number, from_state, to_state, actor, hostname)
  VALUES (UTC_TIMESTAMP(6), 'task', NEW.dag_id, NEW.run_id, NEW.dag_run_id, NEW.task_id, NEW.map_index, NEW.try_number, NULL, NEW.state, @baton_actor, NEW.hostname);

CREATE TRIGGER trg_task_instance_changed AFTER UPDATE ON task_instance FOR EACH ROW
  INSERT INTO event_log (at, kind, dag_id, run_id, dag_run_id, task_id, map_index, try_number, from_state, to_state, actor, hostname)
  SELECT UTC_TIMESTAMP(6), 'task', NEW.dag_id, NEW.run_id, NEW.dag_run_id, NEW.task_id, NEW.map_index, NEW.try_number, OLD.state, NEW.state, @baton_actor, NEW.hostname
    FROM DUAL WHERE NOT (OLD.state <=> NEW.state);

CREATE TRIGGER trg_dag_run_created AFTER INSERT ON dag_run FOR EACH ROW
  INSERT INTO event_log (at, kind, dag_id, run_id, dag_run_id, from_state, to_state, actor)
  VALUES (UTC_TIMESTAMP(6), 'run', NEW.dag_id, NEW.run_id, NEW.id, NULL, NEW.state, @baton_actor);

CREATE TRIGGER trg_dag_run_changed AFTER UPDATE ON dag_run FOR EACH ROW
  INSERT INTO event_log (at, kind, dag_id, run_id, dag_run_id, from_state, to_state, actor)
  SELECT UTC_TIMESTAMP(6), 'run', NEW.dag_id, NEW.run_id, NEW.id, OLD.state, NEW.state, @baton_actor
    FROM DUAL WHERE NOT (OLD.state <=> NEW.state);
