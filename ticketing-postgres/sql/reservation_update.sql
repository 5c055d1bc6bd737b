UPDATE reservations SET status = $2, payment_id = $3, refunded_amount = $4 WHERE id = $1
