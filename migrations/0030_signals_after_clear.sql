-- signals_after: the id of the last signal its run had received when the task instance was last
-- cleared (0: never cleared). A wait takes only signals with a greater id, so a cleared wait
-- starts afresh: a signal the earlier attempt got too late, or a copy it never took, is not
-- delivered to the new one, while another task waiting for the same name still gets it. A
-- re-drive of a dead letter keeps the value, as it keeps recorded steps. Added last with a
-- constant default: instant on MariaDB 10.3+ and MySQL 8.0.12+, whatever the table's size.
ALTER TABLE task_instance ADD COLUMN signals_after BIGINT NOT NULL DEFAULT 0;
