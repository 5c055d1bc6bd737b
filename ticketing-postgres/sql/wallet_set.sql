UPDATE wallets SET balance = $2 WHERE user_id = $1
