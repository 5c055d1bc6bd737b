-- Load and lock everything a batch needs, in the one global lock order (the function is in the
-- migration 20261202000001_batch_load.sql, redefined in 20261203000001_sale_windows.sql and
-- 20261206000001_user_locks.sql).
SELECT * FROM batch_load($1, $2, $3, $4, $5, $6, $7, $8, $9)
