INSERT INTO show_options (id, concert_id, starts_at, sale_opens_at, sale_closes_at)
SELECT * FROM unnest($1::BIGINT[], $2::BIGINT[], $3::TIMESTAMPTZ[], $4::TIMESTAMPTZ[],
                     $5::TIMESTAMPTZ[])
