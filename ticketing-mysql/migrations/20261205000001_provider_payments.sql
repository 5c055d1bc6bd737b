-- Payments through a payment provider (docs/payments.md): one row per charge or refund, recorded
-- before the provider is called and settled after. The attempt is kept whole as JSON (what the
-- store answers); the columns beside it are what it is found by.
CREATE TABLE payment_attempts (
    id             BINARY(16)   NOT NULL PRIMARY KEY,
    reservation_id BINARY(16)   NOT NULL,
    user_id        BIGINT       NOT NULL,
    -- The provider's idempotency key: one key, at most one charge or refund.
    attempt_key    VARCHAR(200) NOT NULL,
    pending        BOOLEAN      NOT NULL,
    created_at     BIGINT       NOT NULL,
    body           MEDIUMTEXT   NOT NULL,
    UNIQUE KEY payment_attempts_key (attempt_key),
    KEY payment_attempts_reservation (reservation_id),
    KEY payment_attempts_pending (pending, created_at, id),
    CONSTRAINT payment_attempts_reservation_fk FOREIGN KEY (reservation_id)
        REFERENCES reservations (id)
) ENGINE = InnoDB;

-- How a payment was made: 'points' (the wallet) or 'provider'.
ALTER TABLE payments ADD COLUMN method VARCHAR(16) NOT NULL DEFAULT 'points'
    CHECK (method IN ('points', 'provider'));
