-- Lock the wallets of a batch's users in ascending user order (the first of the batch's global
-- lock order: users, then reservations, then seats, each ascending).
SELECT user_id, balance FROM wallets WHERE user_id = ANY($1) ORDER BY user_id FOR UPDATE
