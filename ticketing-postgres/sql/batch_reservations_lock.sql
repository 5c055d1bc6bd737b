-- The reservations a batch names (payments, cancels) and the live ones of the users whose holds
-- count toward a cap, locked in id order (after the wallets, before the seats). The expiry
-- sweeper skips locked reservations, so it never waits on a batch (a batch may wait for a
-- sweep's short transaction).
SELECT id, user_id, option_id, seat_ids, status, amount, expires_at, created_at, payment_id,
       refunded_amount
FROM reservations
WHERE id = ANY($1) OR (user_id = ANY($2) AND status IN ('held', 'confirmed'))
ORDER BY id
FOR UPDATE
