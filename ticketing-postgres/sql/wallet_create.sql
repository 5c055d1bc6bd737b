-- Create a wallet (balance 0) that did not exist; the caller then locks it with wallet_lock.sql.
INSERT INTO wallets (user_id, balance) VALUES ($1, 0) ON CONFLICT (user_id) DO NOTHING
