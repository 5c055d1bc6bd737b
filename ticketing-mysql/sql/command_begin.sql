-- A per-command transaction, READ COMMITTED whatever the session's default: every locking read
-- then locks only the rows it returns (no gap or next-key locks, so inserts of new
-- reservations, payments and outbox events never wait on each other), and every plain read
-- sees what was committed before it started (the sale window read after the seat locks).
SET TRANSACTION ISOLATION LEVEL READ COMMITTED; START TRANSACTION
