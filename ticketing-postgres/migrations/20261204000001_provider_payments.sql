-- Payments through a payment provider (docs/payments.md): one row per charge or refund, recorded
-- before the provider is called and settled after. The attempt is kept whole as JSON (what the
-- store answers); the columns beside it are what it is found by.
CREATE TABLE payment_attempts (
    id             UUID        PRIMARY KEY,
    reservation_id UUID        NOT NULL REFERENCES reservations (id),
    user_id        BIGINT      NOT NULL,
    -- The provider's idempotency key: one key, at most one charge or refund.
    key            TEXT        NOT NULL UNIQUE,
    pending        BOOLEAN     NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    body           JSONB       NOT NULL
);
-- A reservation's attempts (read by every payment and cancel of it, under its owner's lock).
CREATE INDEX payment_attempts_reservation ON payment_attempts (reservation_id);
-- What the recovery job finishes, oldest first.
CREATE INDEX payment_attempts_pending ON payment_attempts (created_at, id) WHERE pending;

-- How a payment was made: 'points' (the wallet) or 'provider'.
ALTER TABLE payments ADD COLUMN method TEXT NOT NULL DEFAULT 'points'
    CHECK (method IN ('points', 'provider'));
