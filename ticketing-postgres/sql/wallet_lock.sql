-- Create the wallet if needed and lock it: every change of one user's wallet, reservations
-- and idempotency keys happens under this row lock, taken before any seat lock.
INSERT INTO wallets (user_id, balance) VALUES ($1, 0)
ON CONFLICT (user_id) DO UPDATE SET balance = wallets.balance
RETURNING balance
