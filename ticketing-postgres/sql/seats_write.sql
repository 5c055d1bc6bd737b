-- Store the new states decided by rules.rs, each only if the seat still has the version that
-- was read (always true under FOR UPDATE; the compare-and-set of the optimistic strategy).
UPDATE seats AS s
SET status = v.status,
    reservation_id = v.reservation_id,
    held_until = v.held_until,
    version = s.version + 1,
    fence = CASE WHEN $6::BIGINT IS NULL THEN s.fence ELSE GREATEST(s.fence, $6) END
FROM unnest($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::UUID[], $5::TIMESTAMPTZ[])
     AS v(id, version, status, reservation_id, held_until)
WHERE s.id = v.id AND s.version = v.version
