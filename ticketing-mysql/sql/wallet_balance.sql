SELECT balance FROM wallets WHERE user_id = ?
