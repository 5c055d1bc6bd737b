INSERT INTO show_options (id, concert_id, starts_at)
SELECT * FROM unnest($1::BIGINT[], $2::BIGINT[], $3::TIMESTAMPTZ[])
