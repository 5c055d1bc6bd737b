-- The per-user lock (migration 20261206000001_user_locks.sql), held until the transaction ends.
SELECT lock_user($1)
