INSERT INTO seat_sales (seat_id, reservation_id)
SELECT * FROM unnest($1::BIGINT[], $2::UUID[])
