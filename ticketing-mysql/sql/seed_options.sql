INSERT INTO show_options (id, concert_id, starts_at, sale_opens_at, sale_closes_at) VALUES {values}
