UPDATE reservations SET expires_at = ? WHERE id = ?
