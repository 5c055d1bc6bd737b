-- The per-user lock without a row (issue 11). Every change of one user's reservations,
-- idempotency keys and wallet happens under a transaction-level advisory lock on the user,
-- taken before any row lock (the one global order: user locks ascending by key, then wallets,
-- reservations and seats, each ascending). It was the wallet row, which every hold created (a
-- zero-balance row for each buyer who ever tried to hold, refused holders included) and locked
-- (a WAL record and a dirtied page per hold): a hold now touches no wallet at all; payments,
-- cancels and charges take the advisory lock and then their wallet row.
-- The lock's first key is this schema's reservations table (its oid, bound when the function is
-- created, whatever search_path a caller has): stores in two schemas of one database do not
-- contend. The second is the user id hashed to 32 bits: two users sharing a key only wait for
-- each other. A transaction holds one lock-table entry per user it locks (a batch: one per
-- distinct user, at most its size; PostgreSQL's table has max_locks_per_transaction x
-- max_connections entries, 6,400 by default).
-- Upgrading: instances from before this migration lock the wallet row instead, so old and new
-- instances do not exclude each other; stop the old ones before the new ones serve.

-- The second advisory-lock key of a user.
CREATE FUNCTION user_lock_key(p_user BIGINT) RETURNS INTEGER
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN hashint8(p_user);

-- Take the per-user lock until the end of the transaction.
CREATE FUNCTION lock_user(p_user BIGINT) RETURNS VOID
LANGUAGE sql
RETURN pg_advisory_xact_lock('reservations'::regclass::oid::int4, user_lock_key(p_user));

-- Take the per-user lock, then lock the user's wallet row (created at 0 if there is none);
-- returns the balance. One round trip for what payments, cancels and charges need.
CREATE FUNCTION lock_wallet(p_user BIGINT) RETURNS BIGINT
LANGUAGE plpgsql
AS $$
DECLARE
    v_balance BIGINT;
BEGIN
    PERFORM lock_user(p_user);
    SELECT w.balance INTO v_balance FROM wallets AS w WHERE w.user_id = p_user FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO wallets (user_id, balance) VALUES (p_user, 0) ON CONFLICT DO NOTHING;
        SELECT w.balance INTO v_balance FROM wallets AS w WHERE w.user_id = p_user FOR UPDATE;
    END IF;
    RETURN v_balance;
END
$$;

-- batch_load as in 20261203000001_sale_windows.sql, with the per-user lock above (step 0) and
-- wallets only for the users whose commands read or write one, never created here (step 1).
DROP FUNCTION batch_load(BIGINT[], UUID[], BIGINT[], BIGINT[], BOOLEAN, BIGINT[], BIGINT[], TEXT[]);
CREATE FUNCTION batch_load(
    p_users     BIGINT[],  -- every command's user: locked with lock_user, ascending by key
    p_wallets   BIGINT[],  -- users whose wallet the batch reads or writes (not holds)
    p_named     UUID[],    -- reservations named by payments and cancels
    p_capped    BIGINT[],  -- users whose live reservations count toward a cap
    p_held      BIGINT[],  -- seats wanted by holds
    p_skip      BOOLEAN,   -- skip held seats another transaction has locked (NOWAIT flavour)
    p_options   BIGINT[],  -- options named by holds
    p_key_users BIGINT[],  -- idempotency keys the batch carries: users ...
    p_keys      TEXT[]     -- ... and keys, pairwise
) RETURNS TABLE (
    kind TEXT, user_id BIGINT, balance BIGINT,
    reservation_id UUID, option_id BIGINT, seat_ids BIGINT[], status TEXT, amount BIGINT,
    expires_at TIMESTAMPTZ, created_at TIMESTAMPTZ, payment_id UUID, refunded_amount BIGINT,
    seat_id BIGINT, seat_no TEXT, grade TEXT, price BIGINT, held_until TIMESTAMPTZ,
    version BIGINT, fence BIGINT, key TEXT, fingerprint TEXT, outcome JSONB
)
LANGUAGE plpgsql
-- Every statement here is a lookup by key: never a sequential scan (a plan cached while a
-- table was small would keep one as the table grows).
SET enable_seqscan = off
AS $$
#variable_conflict use_column
DECLARE
    v_waited    BIGINT[] := '{}';
    v_skippable BIGINT[] := '{}';
    v_locked    BIGINT;
    v_user      BIGINT;
BEGIN
    -- 0. Every command's user, under the per-user lock (lock_user above), in ascending key
    --    order (a second user with the same key takes the lock again: advisory locks nest).
    FOREACH v_user IN ARRAY ARRAY(SELECT u FROM unnest(p_users) AS u
                                  ORDER BY user_lock_key(u), u) LOOP
        PERFORM lock_user(v_user);
    END LOOP;

    -- 1. Wallets of payments, cancels and charges, locked (ascending). A missing wallet is a
    --    balance of 0 and is not created here: the batch's write creates the wallets whose
    --    balance a command changed (under the per-user lock, so no one else creates them), and
    --    a refused command leaves no row behind. A hold reads no wallet.
    IF cardinality(p_wallets) > 0 THEN
        RETURN QUERY
        SELECT 'w'::TEXT, w.user_id, w.balance,
               NULL::UUID, NULL::BIGINT, NULL::BIGINT[], NULL::TEXT, NULL::BIGINT,
               NULL::TIMESTAMPTZ, NULL::TIMESTAMPTZ, NULL::UUID, NULL::BIGINT,
               NULL::BIGINT, NULL::TEXT, NULL::TEXT, NULL::BIGINT, NULL::TIMESTAMPTZ,
               NULL::BIGINT, NULL::BIGINT, NULL::TEXT, NULL::TEXT, NULL::JSONB
        FROM wallets AS w WHERE w.user_id = ANY(p_wallets) ORDER BY w.user_id FOR UPDATE;
    END IF;

    -- 2. Reservations named by payments and cancels, and the live ones of capped holders,
    --    locked in id order. (The expiry sweeper skips locked reservations.)
    IF cardinality(p_named) > 0 OR cardinality(p_capped) > 0 THEN
        RETURN QUERY
        SELECT 'r'::TEXT, r.user_id, NULL::BIGINT,
               r.id, r.option_id, r.seat_ids, r.status, r.amount,
               r.expires_at, r.created_at, r.payment_id, r.refunded_amount,
               NULL::BIGINT, NULL::TEXT, NULL::TEXT, NULL::BIGINT, NULL::TIMESTAMPTZ,
               NULL::BIGINT, NULL::BIGINT, NULL::TEXT, NULL::TEXT, NULL::JSONB
        FROM reservations AS r
        WHERE r.id = ANY(p_named)
           OR (r.user_id = ANY(p_capped) AND r.status IN ('held', 'confirmed'))
        ORDER BY r.id
        FOR UPDATE;
        IF cardinality(p_named) > 0 THEN
            v_waited := ARRAY(SELECT DISTINCT s FROM reservations AS r, unnest(r.seat_ids) AS s
                              WHERE r.id = ANY(p_named));
        END IF;
    END IF;

    -- 3. Seats: those of the named reservations (always waited for), then those only holds
    --    want (skipped when another transaction has them locked, under NOWAIT).
    IF p_skip THEN
        v_skippable := ARRAY(SELECT unnest(p_held) EXCEPT SELECT unnest(v_waited));
    ELSE
        v_waited := ARRAY(SELECT unnest(v_waited) UNION SELECT unnest(p_held));
    END IF;
    IF cardinality(v_waited) > 0 THEN
        RETURN QUERY
        SELECT 's'::TEXT, NULL::BIGINT, NULL::BIGINT,
               s.reservation_id, s.option_id, NULL::BIGINT[], s.status, NULL::BIGINT,
               NULL::TIMESTAMPTZ, NULL::TIMESTAMPTZ, NULL::UUID, NULL::BIGINT,
               s.id, s.seat_no, s.grade, s.price, s.held_until,
               s.version, s.fence, NULL::TEXT, NULL::TEXT, NULL::JSONB
        FROM seats AS s WHERE s.id = ANY(v_waited) ORDER BY s.id FOR UPDATE;
    END IF;
    IF cardinality(v_skippable) > 0 THEN
        RETURN QUERY
        SELECT 's'::TEXT, NULL::BIGINT, NULL::BIGINT,
               s.reservation_id, s.option_id, NULL::BIGINT[], s.status, NULL::BIGINT,
               NULL::TIMESTAMPTZ, NULL::TIMESTAMPTZ, NULL::UUID, NULL::BIGINT,
               s.id, s.seat_no, s.grade, s.price, s.held_until,
               s.version, s.fence, NULL::TEXT, NULL::TEXT, NULL::JSONB
        FROM seats AS s WHERE s.id = ANY(v_skippable) ORDER BY s.id FOR UPDATE SKIP LOCKED;
        GET DIAGNOSTICS v_locked = ROW_COUNT;
        -- Some were skipped or do not exist: say which exist, to tell the two apart.
        IF v_locked < cardinality(v_skippable) THEN
            RETURN QUERY
            SELECT 'x'::TEXT, NULL::BIGINT, NULL::BIGINT,
                   NULL::UUID, NULL::BIGINT, NULL::BIGINT[], NULL::TEXT, NULL::BIGINT,
                   NULL::TIMESTAMPTZ, NULL::TIMESTAMPTZ, NULL::UUID, NULL::BIGINT,
                   s.id, NULL::TEXT, NULL::TEXT, NULL::BIGINT, NULL::TIMESTAMPTZ,
                   NULL::BIGINT, NULL::BIGINT, NULL::TEXT, NULL::TEXT, NULL::JSONB
            FROM seats AS s WHERE s.id = ANY(v_skippable);
        END IF;
    END IF;

    -- 4. The options holds name and those of the named reservations, with their sale windows
    --    (in the reused columns created_at: sale_opens_at, expires_at: sale_closes_at,
    --    held_until: starts_at), which `rules` checks for every hold and payment.
    IF cardinality(p_options) > 0 OR cardinality(p_named) > 0 THEN
        RETURN QUERY
        SELECT 'o'::TEXT, NULL::BIGINT, NULL::BIGINT,
               NULL::UUID, o.id, NULL::BIGINT[], NULL::TEXT, NULL::BIGINT,
               o.sale_closes_at, o.sale_opens_at, NULL::UUID, NULL::BIGINT,
               NULL::BIGINT, NULL::TEXT, NULL::TEXT, NULL::BIGINT, o.starts_at,
               NULL::BIGINT, NULL::BIGINT, NULL::TEXT, NULL::TEXT, NULL::JSONB
        FROM show_options AS o
        WHERE o.id = ANY(p_options || ARRAY(SELECT r.option_id FROM reservations AS r
                                            WHERE r.id = ANY(p_named)));
    END IF;

    -- 5. The idempotency records of the keys the batch carries (under their users' per-user
    --    locks, taken above).
    IF cardinality(p_keys) > 0 THEN
        RETURN QUERY
        SELECT 'k'::TEXT, k.user_id, NULL::BIGINT,
               NULL::UUID, NULL::BIGINT, NULL::BIGINT[], NULL::TEXT, NULL::BIGINT,
               NULL::TIMESTAMPTZ, NULL::TIMESTAMPTZ, NULL::UUID, NULL::BIGINT,
               NULL::BIGINT, NULL::TEXT, NULL::TEXT, NULL::BIGINT, NULL::TIMESTAMPTZ,
               NULL::BIGINT, NULL::BIGINT, k.key, k.fingerprint, k.outcome
        FROM idempotency_keys AS k
        JOIN unnest(p_key_users, p_keys) AS v(u, kk) ON k.user_id = v.u AND k.key = v.kk;
    END IF;
END
$$;
