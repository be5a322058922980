-- key_epoch: how many times a new attempt of its saga run redid this task instance after its
-- compensation had undone it (clearTasks), and for a compensation, that of the task it undoes
-- (copied when the saga starts). ctx.idempotencyKey (and each step's) carries it from 1 on
-- (":e<n>"), so the redone charge is a new effect to the payment provider, not the refunded one
-- handed back, and its refund is not deduplicated against the first. 0 keeps the keys of every
-- existing task instance as they were. Not breaking: an older process beside it neither bumps
-- nor reads it (its keys are those of before). Added last with a constant default: instant on
-- MariaDB 10.3+ and MySQL 8.0.12+, whatever the table's size.
ALTER TABLE task_instance ADD COLUMN key_epoch INT NOT NULL DEFAULT 0;
