-- Everything a batch changed, in one statement (one plan, one round trip). Each part is one of
-- the batch_*.sql writes; a part whose arrays are empty changes nothing. Foreign keys are
-- checked at the end of the statement, so a payment or sale may name a reservation inserted by
-- a sibling part. Sales a batch removes are deleted before this statement (batch_sales_delete).
WITH wallets_w AS (
    -- A wallet the batch found missing (balance 0) is created here, only when a command
    -- changed it (the user's per-user lock is held: no one else creates it meanwhile).
    INSERT INTO wallets (user_id, balance)
    SELECT v.user_id, v.balance FROM unnest($1::BIGINT[], $2::BIGINT[]) AS v(user_id, balance)
    ORDER BY v.user_id
    ON CONFLICT (user_id) DO UPDATE SET balance = EXCLUDED.balance
    RETURNING 1
), seats_w AS (
    UPDATE seats AS s
    SET status = v.status, reservation_id = v.reservation_id, held_until = v.held_until,
        version = s.version + 1, fence = v.fence
    FROM unnest($3::BIGINT[], $4::TEXT[], $5::UUID[], $6::TIMESTAMPTZ[], $7::BIGINT[])
         AS v(id, status, reservation_id, held_until, fence)
    WHERE s.id = v.id
    RETURNING 1
), reservations_i AS (
    INSERT INTO reservations (id, user_id, option_id, seat_ids, status, amount, expires_at,
                              created_at, payment_id, refunded_amount)
    SELECT v.id, v.user_id, v.option_id, v.seat_ids::BIGINT[], v.status, v.amount,
           v.expires_at, v.created_at, v.payment_id, v.refunded_amount
    FROM unnest($8::UUID[], $9::BIGINT[], $10::BIGINT[], $11::TEXT[], $12::TEXT[],
                $13::BIGINT[], $14::TIMESTAMPTZ[], $15::TIMESTAMPTZ[], $16::UUID[], $17::BIGINT[])
         AS v(id, user_id, option_id, seat_ids, status, amount, expires_at, created_at,
              payment_id, refunded_amount)
    RETURNING 1
), reservations_u AS (
    UPDATE reservations AS r
    SET status = v.status, payment_id = v.payment_id, refunded_amount = v.refunded_amount
    FROM unnest($18::UUID[], $19::TEXT[], $20::UUID[], $21::BIGINT[])
         AS v(id, status, payment_id, refunded_amount)
    WHERE r.id = v.id
    RETURNING 1
), payments_i AS (
    INSERT INTO payments (id, reservation_id, user_id, amount, balance_after, created_at)
    SELECT * FROM unnest($22::UUID[], $23::UUID[], $24::BIGINT[], $25::BIGINT[],
                         $26::BIGINT[], $27::TIMESTAMPTZ[])
    RETURNING 1
), sales_i AS (
    INSERT INTO seat_sales (seat_id, reservation_id)
    SELECT * FROM unnest($28::BIGINT[], $29::UUID[])
    RETURNING 1
), ledger_i AS (
    INSERT INTO wallet_ledger (user_id, kind, amount, reference, at)
    SELECT v.user_id, v.kind, v.amount, v.reference, v.at
    FROM unnest($30::BIGINT[], $31::TEXT[], $32::BIGINT[], $33::UUID[], $34::TIMESTAMPTZ[])
         WITH ORDINALITY AS v(user_id, kind, amount, reference, at, n)
    ORDER BY v.n
    RETURNING 1
), outbox_i AS (
    INSERT INTO outbox (event_id, at, payload)
    SELECT v.event_id, v.at, v.payload::JSONB
    FROM unnest($35::UUID[], $36::TIMESTAMPTZ[], $37::TEXT[])
         WITH ORDINALITY AS v(event_id, at, payload, n)
    ORDER BY v.n
    RETURNING 1
), keys_i AS (
    INSERT INTO idempotency_keys (user_id, key, fingerprint, outcome, created_at)
    SELECT v.user_id, v.key, v.fingerprint, v.outcome::JSONB, v.created_at
    FROM unnest($38::BIGINT[], $39::TEXT[], $40::TEXT[], $41::TEXT[], $42::TIMESTAMPTZ[])
         AS v(user_id, key, fingerprint, outcome, created_at)
    RETURNING 1
)
SELECT 1
