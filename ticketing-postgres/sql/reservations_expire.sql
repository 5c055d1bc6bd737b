UPDATE reservations SET status = 'expired' WHERE id = ANY($1) AND status = 'held'
