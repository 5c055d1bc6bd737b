UPDATE reservations SET status = ?, payment_id = ?, refunded_amount = ? WHERE id = ?
