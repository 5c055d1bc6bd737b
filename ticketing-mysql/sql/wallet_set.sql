UPDATE wallets SET balance = ? WHERE user_id = ?
