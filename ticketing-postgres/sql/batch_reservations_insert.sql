-- Reservations created by a batch, in their final state (a hold paid or cancelled in the same
-- batch is inserted as such). Seat ids come as array literals: unnest flattens 2-D arrays.
INSERT INTO reservations (id, user_id, option_id, seat_ids, status, amount, expires_at,
                          created_at, payment_id, refunded_amount)
SELECT v.id, v.user_id, v.option_id, v.seat_ids::BIGINT[], v.status, v.amount, v.expires_at,
       v.created_at, v.payment_id, v.refunded_amount
FROM unnest($1::UUID[], $2::BIGINT[], $3::BIGINT[], $4::TEXT[], $5::TEXT[], $6::BIGINT[],
            $7::TIMESTAMPTZ[], $8::TIMESTAMPTZ[], $9::UUID[], $10::BIGINT[])
     AS v(id, user_id, option_id, seat_ids, status, amount, expires_at, created_at, payment_id,
          refunded_amount)
