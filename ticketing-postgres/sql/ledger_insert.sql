INSERT INTO wallet_ledger (user_id, kind, amount, reference, at) VALUES ($1, $2, $3, $4, $5)
