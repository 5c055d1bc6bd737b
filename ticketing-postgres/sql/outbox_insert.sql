INSERT INTO outbox (event_id, at, payload) VALUES ($1, $2, $3)
