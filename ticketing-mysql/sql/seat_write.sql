-- Store one seat's new state decided by rules, only if it still has the version that was read
-- (always true under FOR UPDATE; the compare-and-set of the optimistic strategy). The fencing
-- token (the fourth to sixth parameters, all the same) is kept at the largest one accepted: GREATEST is NULL
-- in MySQL when either side is, hence the CASE. Assignments run left to right in MySQL: none
-- here reads a column assigned before it.
UPDATE seats
SET status = ?, reservation_id = ?, held_until = ?, version = version + 1,
    fence = CASE WHEN ? IS NULL THEN fence
                 WHEN fence IS NULL THEN ?
                 ELSE GREATEST(fence, ?) END
WHERE id = ? AND version = ?
