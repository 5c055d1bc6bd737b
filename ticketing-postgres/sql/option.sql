SELECT id, concert_id, starts_at FROM show_options WHERE id = $1
