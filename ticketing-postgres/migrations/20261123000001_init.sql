-- The ticketing schema. Constraints make corruption impossible even for a buggy caller:
-- a seat is sold to at most one reservation (seat_sales primary key), balances never go
-- negative (CHECK), a seat's status agrees with its columns (CHECK), a reservation is paid once.

CREATE TABLE concerts (
    id    BIGINT PRIMARY KEY CHECK (id > 0),
    title TEXT   NOT NULL,
    venue TEXT   NOT NULL
);

CREATE TABLE show_options (
    id         BIGINT      PRIMARY KEY CHECK (id > 0),
    concert_id BIGINT      NOT NULL REFERENCES concerts (id),
    starts_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX show_options_concert ON show_options (concert_id);

CREATE TABLE seats (
    id             BIGINT      PRIMARY KEY CHECK (id > 0),
    option_id      BIGINT      NOT NULL REFERENCES show_options (id),
    seat_no        TEXT        NOT NULL,
    grade          TEXT        NOT NULL,
    price          BIGINT      NOT NULL CHECK (price >= 0),
    status         TEXT        NOT NULL DEFAULT 'available'
                               CHECK (status IN ('available', 'held', 'sold')),
    reservation_id UUID,
    held_until     TIMESTAMPTZ,
    version        BIGINT      NOT NULL DEFAULT 0,
    fence          BIGINT,
    CHECK ((status = 'available') = (reservation_id IS NULL)),
    CHECK ((status = 'held') = (held_until IS NOT NULL))
);
CREATE INDEX seats_option ON seats (option_id, id);

CREATE TABLE reservations (
    id              UUID        PRIMARY KEY,
    user_id         BIGINT      NOT NULL CHECK (user_id > 0),
    option_id       BIGINT      NOT NULL REFERENCES show_options (id),
    seat_ids        BIGINT[]    NOT NULL CHECK (cardinality(seat_ids) > 0),
    status          TEXT        NOT NULL
                                CHECK (status IN ('held', 'confirmed', 'cancelled', 'expired')),
    amount          BIGINT      NOT NULL CHECK (amount >= 0),
    expires_at      TIMESTAMPTZ NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    payment_id      UUID,
    refunded_amount BIGINT      NOT NULL DEFAULT 0 CHECK (refunded_amount >= 0)
);
CREATE INDEX reservations_user ON reservations (user_id, option_id);
CREATE INDEX reservations_due ON reservations (expires_at) WHERE status = 'held';

CREATE TABLE wallets (
    user_id BIGINT PRIMARY KEY CHECK (user_id > 0),
    balance BIGINT NOT NULL DEFAULT 0 CHECK (balance >= 0)
);

CREATE TABLE payments (
    id             UUID        PRIMARY KEY,
    reservation_id UUID        NOT NULL UNIQUE REFERENCES reservations (id),
    user_id        BIGINT      NOT NULL,
    amount         BIGINT      NOT NULL CHECK (amount >= 0),
    balance_after  BIGINT      NOT NULL CHECK (balance_after >= 0),
    created_at     TIMESTAMPTZ NOT NULL
);

-- One row per sold seat: the primary key is what makes a double sale impossible.
CREATE TABLE seat_sales (
    seat_id        BIGINT PRIMARY KEY REFERENCES seats (id),
    reservation_id UUID   NOT NULL REFERENCES reservations (id)
);

CREATE TABLE wallet_ledger (
    id        BIGSERIAL   PRIMARY KEY,
    user_id   BIGINT      NOT NULL,
    kind      TEXT        NOT NULL CHECK (kind IN ('charge', 'payment', 'refund')),
    amount    BIGINT      NOT NULL CHECK (amount > 0),
    reference UUID,
    at        TIMESTAMPTZ NOT NULL
);
CREATE INDEX wallet_ledger_user ON wallet_ledger (user_id);

CREATE TABLE idempotency_keys (
    user_id     BIGINT      NOT NULL,
    key         TEXT        NOT NULL,
    fingerprint TEXT        NOT NULL,
    outcome     JSONB       NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, key)
);

CREATE TABLE outbox (
    seq          BIGSERIAL   PRIMARY KEY,
    event_id     UUID        NOT NULL UNIQUE,
    at           TIMESTAMPTZ NOT NULL,
    payload      JSONB       NOT NULL,
    published_at TIMESTAMPTZ
);
CREATE INDEX outbox_pending ON outbox (seq) WHERE published_at IS NULL;
