-- Lock the user's wallet row: every change of one user's wallet, reservations and idempotency
-- keys happens under this row lock, taken before any seat lock. No row: see wallet_create.sql.
SELECT balance FROM wallets WHERE user_id = ? FOR UPDATE
