-- The values list: one (seat_id, reservation_id) row per seat.
INSERT INTO seat_sales (seat_id, reservation_id) VALUES {values}
