-- The ticketing schema for MySQL 8 / MariaDB 10.6+ (InnoDB). Constraints make corruption
-- impossible even for a buggy caller: a seat is sold to at most one reservation (seat_sales
-- primary key), balances never go negative (CHECK), a seat's status agrees with its columns
-- (CHECK), a reservation is paid once (payments.reservation_id UNIQUE).
--
-- Instants are BIGINT microseconds since the Unix epoch, UTC: exact to the microsecond, free of
-- the session's time_zone, compared as integers (a hold held until t is over at t). UUIDs are
-- BINARY(16) (v7 ids sort by time as bytes). Lists (a reservation's seats) are JSON text, with
-- their length beside them for counting in SQL.

CREATE TABLE concerts (
    id    BIGINT       NOT NULL PRIMARY KEY CHECK (id > 0),
    title VARCHAR(512) NOT NULL,
    venue VARCHAR(512) NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE show_options (
    id             BIGINT NOT NULL PRIMARY KEY CHECK (id > 0),
    concert_id     BIGINT NOT NULL,
    starts_at      BIGINT NOT NULL,
    sale_opens_at  BIGINT NULL,
    sale_closes_at BIGINT NULL,
    KEY show_options_concert (concert_id),
    CONSTRAINT show_options_concert_fk FOREIGN KEY (concert_id) REFERENCES concerts (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE seats (
    id             BIGINT       NOT NULL PRIMARY KEY CHECK (id > 0),
    option_id      BIGINT       NOT NULL,
    seat_no        VARCHAR(255) NOT NULL,
    grade          VARCHAR(255) NOT NULL,
    price          BIGINT       NOT NULL CHECK (price >= 0),
    status         VARCHAR(16)  NOT NULL DEFAULT 'available'
                                CHECK (status IN ('available', 'held', 'sold')),
    reservation_id BINARY(16)   NULL,
    held_until     BIGINT       NULL,
    version        BIGINT       NOT NULL DEFAULT 0,
    fence          BIGINT       NULL,
    KEY seats_option (option_id, id),
    CONSTRAINT seats_option_fk FOREIGN KEY (option_id) REFERENCES show_options (id),
    CONSTRAINT seats_owner CHECK ((status = 'available') = (reservation_id IS NULL)),
    CONSTRAINT seats_until CHECK ((status = 'held') = (held_until IS NOT NULL))
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- No foreign key to show_options: it would take a shared lock on the option row for every hold
-- (the store checks that every seat of a hold is of its option; seats reference options).
CREATE TABLE reservations (
    id              BINARY(16)  NOT NULL PRIMARY KEY,
    user_id         BIGINT      NOT NULL CHECK (user_id > 0),
    option_id       BIGINT      NOT NULL,
    seat_ids        TEXT        NOT NULL,
    seat_count      INT         NOT NULL CHECK (seat_count > 0),
    status          VARCHAR(16) NOT NULL
                                CHECK (status IN ('held', 'confirmed', 'cancelled', 'expired')),
    amount          BIGINT      NOT NULL CHECK (amount >= 0),
    expires_at      BIGINT      NOT NULL,
    created_at      BIGINT      NOT NULL,
    payment_id      BINARY(16)  NULL,
    refunded_amount BIGINT      NOT NULL DEFAULT 0 CHECK (refunded_amount >= 0),
    KEY reservations_user (user_id, option_id),
    KEY reservations_due (status, expires_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE wallets (
    user_id BIGINT NOT NULL PRIMARY KEY CHECK (user_id > 0),
    balance BIGINT NOT NULL DEFAULT 0 CHECK (balance >= 0)
) ENGINE = InnoDB;

CREATE TABLE payments (
    id             BINARY(16) NOT NULL PRIMARY KEY,
    reservation_id BINARY(16) NOT NULL,
    user_id        BIGINT     NOT NULL,
    amount         BIGINT     NOT NULL CHECK (amount >= 0),
    balance_after  BIGINT     NOT NULL CHECK (balance_after >= 0),
    created_at     BIGINT     NOT NULL,
    UNIQUE KEY payments_reservation (reservation_id),
    CONSTRAINT payments_reservation_fk FOREIGN KEY (reservation_id) REFERENCES reservations (id)
) ENGINE = InnoDB;

-- One row per sold seat: the primary key is what makes a double sale impossible.
CREATE TABLE seat_sales (
    seat_id        BIGINT     NOT NULL PRIMARY KEY,
    reservation_id BINARY(16) NOT NULL,
    KEY seat_sales_reservation (reservation_id),
    CONSTRAINT seat_sales_seat_fk FOREIGN KEY (seat_id) REFERENCES seats (id),
    CONSTRAINT seat_sales_reservation_fk FOREIGN KEY (reservation_id) REFERENCES reservations (id)
) ENGINE = InnoDB;

CREATE TABLE wallet_ledger (
    id        BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id   BIGINT      NOT NULL,
    kind      VARCHAR(16) NOT NULL CHECK (kind IN ('charge', 'payment', 'refund')),
    amount    BIGINT      NOT NULL CHECK (amount > 0),
    reference BINARY(16)  NULL,
    at        BIGINT      NOT NULL,
    KEY wallet_ledger_user (user_id)
) ENGINE = InnoDB;

-- Keys compare byte for byte: VARBINARY, not a VARCHAR whose collation would fold case or
-- ignore trailing spaces ("K" and "k " are two keys). At most MAX_KEY_LEN (200) bytes.
CREATE TABLE idempotency_keys (
    user_id     BIGINT          NOT NULL,
    idem_key    VARBINARY(200)  NOT NULL,
    fingerprint MEDIUMTEXT      NOT NULL,
    outcome     MEDIUMTEXT      NOT NULL,
    created_at  BIGINT          NOT NULL,
    PRIMARY KEY (user_id, idem_key),
    KEY idempotency_keys_created (created_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- seq: AUTO_INCREMENT, taken at insert, visible at commit (acknowledged by exact seq).
-- published_at: NULL until acknowledged (database clock, microseconds).
CREATE TABLE outbox (
    seq          BIGINT     NOT NULL AUTO_INCREMENT PRIMARY KEY,
    event_id     BINARY(16) NOT NULL,
    at           BIGINT     NOT NULL,
    payload      MEDIUMTEXT NOT NULL,
    published_at BIGINT     NULL,
    KEY outbox_pending (published_at, seq)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
