SELECT id, title, venue FROM concerts ORDER BY id
