-- First step of a sale window change: lock every seat of the option in id order (as commands
-- do) and bump its version, in the window change's transaction. A hold, payment or cancel
-- deciding on one of them either holds its lock (this waits until it commits) or has read its
-- version (its compare-and-set fails and it is retried, reading the new window).
UPDATE seats SET version = version + 1 WHERE option_id = ? ORDER BY id
