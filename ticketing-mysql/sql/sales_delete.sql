DELETE FROM seat_sales WHERE reservation_id = ?
