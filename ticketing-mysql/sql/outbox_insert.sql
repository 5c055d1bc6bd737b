INSERT INTO outbox (event_id, at, payload) VALUES (?, ?, ?)
