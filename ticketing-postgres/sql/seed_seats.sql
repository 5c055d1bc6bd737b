INSERT INTO seats (id, option_id, seat_no, grade, price)
SELECT * FROM unnest($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::TEXT[], $5::BIGINT[])
