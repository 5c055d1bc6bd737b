-- The final state of several seats (the rows are locked, so no version check); used by the sweeper.
UPDATE seats AS s
SET status = v.status,
    reservation_id = v.reservation_id,
    held_until = v.held_until,
    version = s.version + 1,
    fence = v.fence
FROM unnest($1::BIGINT[], $2::TEXT[], $3::UUID[], $4::TIMESTAMPTZ[], $5::BIGINT[])
     AS v(id, status, reservation_id, held_until, fence)
WHERE s.id = v.id
