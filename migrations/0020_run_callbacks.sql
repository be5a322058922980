-- A DAG's onSuccess / onFailure ran only when the worker that recorded a run's last task saw the
-- run end, and only if that worker lived on: a run failed by its dagrunTimeout, by the scheduler
-- reaping a lost worker's task or over the API had no callback, and a worker that died right
-- after the commit lost it. Now the end of a run marks the callback due in the very UPDATE that
-- ends it (a trigger, like the event log, so every code path does), and workers claim due
-- callbacks from the table (store/transitions/runCallbacks.ts).

-- Which callbacks a version defines, so the trigger marks only runs that have one.
ALTER TABLE dag_version
  ADD COLUMN on_success TINYINT(1) NOT NULL DEFAULT 0,
  ADD COLUMN on_failure TINYINT(1) NOT NULL DEFAULT 0;
UPDATE dag_version
   SET on_success = IFNULL(JSON_VALUE(structure, '$.callbacks.onSuccess') IN ('1', 'true'), 0),
       on_failure = IFNULL(JSON_VALUE(structure, '$.callbacks.onFailure') IN ('1', 'true'), 0);

-- callback_due: the run ended and its callback has not run yet; callback_state: the state it
-- ended in (what the callback is for; the run may be cleared meanwhile). callback_claimed_at: a
-- worker is running it (a lease: another worker takes it over when it is old).
ALTER TABLE dag_run
  ADD COLUMN callback_due TINYINT(1) NOT NULL DEFAULT 0,
  ADD COLUMN callback_state VARCHAR(20) NULL,
  ADD COLUMN callback_claimed_at DATETIME(6) NULL,
  ADD KEY ix_dag_run_callback (callback_due, id);

-- A run that ends owes its DAG's callback for that state (if the version defines one). A run
-- that is reopened (cleared, or failed and then compensating, even within one transaction)
-- owes nothing until it ends again, unless a worker already runs the callback.
CREATE TRIGGER trg_dag_run_callback BEFORE UPDATE ON dag_run FOR EACH ROW
  SET NEW.callback_due = IF(OLD.state <=> NEW.state, NEW.callback_due,
        IF(NEW.state IN ('success', 'failed'),
           IFNULL((SELECT IF(NEW.state = 'success', v.on_success, v.on_failure) FROM dag_version v
                    WHERE v.dag_id = NEW.dag_id AND v.version_hash = NEW.version_hash), 0),
           IF(NEW.callback_claimed_at IS NULL, 0, NEW.callback_due))),
      NEW.callback_state = IF(NEW.state IN ('success', 'failed') AND NOT (OLD.state <=> NEW.state), NEW.state, NEW.callback_state),
      NEW.callback_claimed_at = IF(NEW.state IN ('success', 'failed') AND NOT (OLD.state <=> NEW.state), NULL, NEW.callback_claimed_at);
