INSERT INTO concerts (id, title, venue)
SELECT * FROM unnest($1::BIGINT[], $2::TEXT[], $3::TEXT[])
