UPDATE reservations AS r
SET status = v.status, payment_id = v.payment_id, refunded_amount = v.refunded_amount
FROM unnest($1::UUID[], $2::TEXT[], $3::UUID[], $4::BIGINT[])
     AS v(id, status, payment_id, refunded_amount)
WHERE r.id = v.id
