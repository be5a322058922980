-- MySQL's version of 0031_event_detail.sql (same triggers, same reason): MySQL has no CREATE OR
-- REPLACE TRIGGER, so each trigger is dropped and created again. A state change made by another
-- process in the instant between the two is not logged; run this migration (upgrade) while no
-- scheduler or worker is changing states.
DROP TRIGGER IF EXISTS trg_task_instance_created;
CREATE TRIGGER trg_task_instance_created AFTER INSERT ON task_instance FOR EACH ROW
  INSERT INTO event_log (at, kind, dag_id, run_id, dag_run_id, task_id, map_index, try_number, from_state, to_state, actor, hostname, detail)
  VALUES (UTC_TIMESTAMP(6), 'task', NEW.dag_id, NEW.run_id, NEW.dag_run_id, NEW.task_id, NEW.map_index, NEW.try_number, NULL, NEW.state, @baton_actor, NEW.hostname,
          LEFT(@baton_event_detail, 1000));

DROP TRIGGER IF EXISTS trg_task_instance_changed;
CREATE TRIGGER trg_task_instance_changed AFTER UPDATE ON task_instance FOR EACH ROW
BEGIN
  IF NOT (OLD.state <=> NEW.state) THEN
    INSERT INTO event_log (at, kind, dag_id, run_id, dag_run_id, task_id, map_index, try_number, from_state, to_state, actor, hostname, detail)
    VALUES (UTC_TIMESTAMP(6), 'task', NEW.dag_id, NEW.run_id, NEW.dag_run_id, NEW.task_id, NEW.map_index, NEW.try_number, OLD.state, NEW.state, @baton_actor, NEW.hostname,
            LEFT(@baton_event_detail, 1000));
  END IF;
END;

DROP TRIGGER IF EXISTS trg_dag_run_created;
CREATE TRIGGER trg_dag_run_created AFTER INSERT ON dag_run FOR EACH ROW
  INSERT INTO event_log (at, kind, dag_id, run_id, dag_run_id, from_state, to_state, actor, detail)
  VALUES (UTC_TIMESTAMP(6), 'run', NEW.dag_id, NEW.run_id, NEW.id, NULL, NEW.state, @baton_actor, LEFT(@baton_event_detail, 1000));

DROP TRIGGER IF EXISTS trg_dag_run_changed;
CREATE TRIGGER trg_dag_run_changed AFTER UPDATE ON dag_run FOR EACH ROW
BEGIN
  IF NOT (OLD.state <=> NEW.state) THEN
    INSERT INTO event_log (at, kind, dag_id, run_id, dag_run_id, from_state, to_state, actor, detail)
    VALUES (UTC_TIMESTAMP(6), 'run', NEW.dag_id, NEW.run_id, NEW.id, OLD.state, NEW.state, @baton_actor, LEFT(@baton_event_detail, 1000));
  END IF;
END;
