SELECT id, title, venue FROM concerts WHERE id = ?
