INSERT INTO concerts (id, title, venue) VALUES {values}
