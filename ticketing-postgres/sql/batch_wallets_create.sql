-- Create the wallets (balance 0) of users that have none, in ascending order.
INSERT INTO wallets (user_id, balance)
SELECT u, 0 FROM unnest($1::BIGINT[]) AS u ORDER BY u
ON CONFLICT (user_id) DO NOTHING
