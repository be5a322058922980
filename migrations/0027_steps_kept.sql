-- steps_kept: 1 when a try that does not count left durable steps (ctx.step) behind, so the
-- next claim must load them although its try number is 1. Tries after the first always load
-- their task instance's steps; the first try of a task instance has none, and loading them
-- there would cost every task a query. Only a hand-back (store/transitions/handBack.ts: a
-- stopping worker returns an unfinished try, try_number - 1) makes a try 1 run again over
-- recorded steps: it sets this, in the same UPDATE, from the steps it finds. The claim reads it
-- with the row it already reads. Added last with a constant default: instant on MariaDB 10.3+
-- and MySQL 8.0.12+, whatever the table's size.
ALTER TABLE task_instance ADD COLUMN steps_kept TINYINT NOT NULL DEFAULT 0;
