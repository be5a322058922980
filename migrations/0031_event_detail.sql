-- Event log rows say why a transition was made: each trigger writes detail from
-- @baton_event_detail, which a transition sets on its connection for the statements it sends
-- (Db.withEventDetail, eventDetailStatement in store/db.ts: "handed back by worker h:1234
-- (shutdown)", "cleared by token:ops", …) and Db.tx / Db.batchTx reset when they give the
-- connection back; NULL when unset, as for every hot-path change (a claim, a try's result). Only
-- refused requests (kind auth) filled detail before. Cut to the column's 1,000 characters here
-- too, so a longer value can never fail the statement that fired the trigger. CREATE OR REPLACE
-- swaps each trigger at once (see 0025), so no state change goes unlogged while this runs. An
-- older process beside this one sets no detail: its events have none, as before.
CREATE OR REPLACE TRIGGER trg_task_instance_created AFTER INSERT ON task_instance FOR EACH ROW
  INSERT INTO event_log (at, kind, dag_id, run_id, dag_run_id, task_id, map_index, try_number, from_state, to_state, actor, hostname, detail)
  VALUES (UTC_TIMESTAMP(6), 'task', NEW.dag_id, NEW.run_id, NEW.dag_run_id, NEW.task_id, NEW.map_index, NEW.try_number, NULL, NEW.state, @baton_actor, NEW.hostname,
          LEFT(@baton_event_detail, 1000));

CREATE OR REPLACE TRIGGER trg_task_instance_changed AFTER UPDATE ON task_instance FOR EACH ROW
  IF NOT (OLD.state <=> NEW.state) THEN
    INSERT INTO event_log (at, kind, dag_id, run_id, dag_run_id, task_id, map_index, try_number, from_state, to_state, actor, hostname, detail)
    VALUES (UTC_TIMESTAMP(6), 'task', NEW.dag_id, NEW.run_id, NEW.dag_run_id, NEW.task_id, NEW.map_index, NEW.try_number, OLD.state, NEW.state, @baton_actor, NEW.hostname,
            LEFT(@baton_event_detail, 1000));
  END IF;

CREATE OR REPLACE TRIGGER trg_dag_run_created AFTER INSERT ON dag_run FOR EACH ROW
  INSERT INTO event_log (at, kind, dag_id, run_id, dag_run_id, from_state, to_state, actor, detail)
  VALUES (UTC_TIMESTAMP(6), 'run', NEW.dag_id, NEW.run_id, NEW.id, NULL, NEW.state, @baton_actor, LEFT(@baton_event_detail, 1000));

CREATE OR REPLACE TRIGGER trg_dag_run_changed AFTER UPDATE ON dag_run FOR EACH ROW
  IF NOT (OLD.state <=> NEW.state) THEN
    INSERT INTO event_log (at, kind, dag_id, run_id, dag_run_id, from_state, to_state, actor, detail)
    VALUES (UTC_TIMESTAMP(6), 'run', NEW.dag_id, NEW.run_id, NEW.id, OLD.state, NEW.state, @baton_actor, LEFT(@baton_event_detail, 1000));
  END IF;
