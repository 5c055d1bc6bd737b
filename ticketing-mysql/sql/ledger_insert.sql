INSERT INTO wallet_ledger (user_id, kind, amount, reference, at) VALUES (?, ?, ?, ?, ?)
