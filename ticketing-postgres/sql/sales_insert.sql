INSERT INTO seat_sales (seat_id, reservation_id) SELECT unnest($1::BIGINT[]), $2
