-- Set an option's sale window, and lock (in id order, as commands do) and bump the version of
-- every seat of the option in the same transaction: a hold, payment or cancel deciding on one
-- of them either holds its lock (this waits until it commits) or has read its version (its
-- compare-and-set fails and it is retried, reading the new window). Commands read the window
-- after their seats (store.rs `sale_window`, batch_load step 4), so none commits with a window
-- older than this one once it has returned.
WITH fenced AS (
    UPDATE seats SET version = version + 1
    WHERE id IN (SELECT id FROM seats WHERE option_id = $1 ORDER BY id FOR UPDATE)
)
UPDATE show_options SET sale_opens_at = $2, sale_closes_at = $3 WHERE id = $1
RETURNING id, concert_id, starts_at, sale_opens_at, sale_closes_at
