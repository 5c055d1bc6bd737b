-- The sweeper frees a seat it has locked (no version check; the fencing token is kept).
UPDATE seats SET status = ?, reservation_id = ?, held_until = ?, version = version + 1
WHERE id = ?
