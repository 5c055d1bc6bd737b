INSERT INTO payments (id, reservation_id, user_id, amount, balance_after, created_at)
SELECT * FROM unnest($1::UUID[], $2::UUID[], $3::BIGINT[], $4::BIGINT[], $5::BIGINT[],
                     $6::TIMESTAMPTZ[])
