SELECT id FROM show_options WHERE id = ANY($1)
