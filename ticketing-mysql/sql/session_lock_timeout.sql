-- How long a statement waits for a row lock before failing with 1205, in whole seconds (the
-- parameter: MySqlConfig::lock_timeout rounded up, at least 1).
SET SESSION innodb_lock_wait_timeout = ?
