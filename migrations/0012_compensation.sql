-- Saga compensation: NULL (none needed), 'running', 'compensated' or 'compensation_failed'.
ALTER TABLE dag_run ADD COLUMN compensation VARCHAR(24) NULL;
