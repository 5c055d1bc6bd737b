-- Create a wallet (balance 0) that did not exist; the caller then locks it with wallet_lock.sql.
-- (Not INSERT IGNORE: that would turn a CHECK violation into a warning.)
INSERT INTO wallets (user_id, balance) VALUES (?, 0) ON DUPLICATE KEY UPDATE user_id = user_id
