UPDATE wallets AS w SET balance = v.balance
FROM unnest($1::BIGINT[], $2::BIGINT[]) AS v(user_id, balance)
WHERE w.user_id = v.user_id
