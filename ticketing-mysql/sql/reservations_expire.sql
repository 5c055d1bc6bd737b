UPDATE reservations SET status = 'expired' WHERE id IN ({ids}) AND status = 'held'
