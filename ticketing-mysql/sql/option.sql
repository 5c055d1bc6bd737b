SELECT id, concert_id, starts_at, sale_opens_at, sale_closes_at FROM show_options WHERE id = ?
