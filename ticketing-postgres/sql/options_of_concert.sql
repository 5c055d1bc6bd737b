-- Available = free, or held by a hold whose time has passed ($2 is now): the SQL mirror of
-- rules::effective_seat_state, checked by the conformance suite.
SELECT o.id, o.concert_id, o.starts_at, o.sale_opens_at, o.sale_closes_at,
       count(s.id) AS total,
       count(s.id) FILTER (WHERE s.status = 'available'
                              OR (s.status = 'held' AND s.held_until <= $2)) AS available
FROM show_options o
LEFT JOIN seats s ON s.option_id = o.id
WHERE o.concert_id = $1
GROUP BY o.id
ORDER BY o.id
