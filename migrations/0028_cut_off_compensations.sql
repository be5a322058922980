-- A run cancelled or timed out while compensating used to end `failed` with compensation
-- 'running' for good (endRuns now ends it 'compensation_failed'). While a run compensates it is
-- `running`, so a failed run still showing 'running' is one of those: say what happened to it.
UPDATE dag_run SET compensation = 'compensation_failed' WHERE state = 'failed' AND compensation = 'running';
