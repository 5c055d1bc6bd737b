-- The per-user lock, then the user's wallet row (created at 0 if there is none), locked;
-- returns the balance (migration 20261206000001_user_locks.sql).
SELECT lock_wallet($1)
