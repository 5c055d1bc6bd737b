-- Run on every new connection of a MySqlConfig pool (text protocol, two statements). READ
-- COMMITTED by default, for the statements run on the pool outside a command's transaction
-- (acknowledging outbox events, reads): a locking read or a range write locks only the rows it
-- touches, no gap or next-key locks that would block every command's outbox insert (it needs
-- ROW or MIXED binlog_format: with STATEMENT, a write fails with 1665). autocommit on, so a
-- statement on the pool is its own transaction. STRICT_ALL_TABLES added to whatever sql_mode the
-- server gave: a value too long or out of range is an error, never silently truncated or
-- clipped (CONCAT_WS skips an empty mode).
SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED;
SET SESSION autocommit = 1,
    sql_mode = CONCAT_WS(',', NULLIF(@@SESSION.sql_mode, ''), 'STRICT_ALL_TABLES')
