//! Idempotency keys: the same key with the same request gives the first result again; the same
//! key with another request is a conflict. Keys are scoped per user.

use serde::{Deserialize, Serialize};

use crate::domain::{Balance, Payment, Reservation};
use crate::error::Error;
use crate::ids::UserId;
use crate::provider::PaymentAttempt;

/// The longest idempotency key accepted.
pub const MAX_KEY_LEN: usize = 200;

/// An idempotency key as a store records it, with the fingerprint of the request it guarded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyKey {
    /// The user the key belongs to: keys of different users never meet.
    pub user_id: UserId,
    /// The client's key.
    pub key: String,
    /// A canonical description of the request (operation and arguments).
    pub fingerprint: String,
}

impl IdempotencyKey {
    /// Check a client key (1..=200 visible ASCII characters) and bind it to a request.
    pub fn new(user_id: UserId, key: &str, fingerprint: String) -> Result<Self, Error> {
        if key.is_empty() || key.len() > MAX_KEY_LEN {
            return Err(Error::invalid(format!(
                "idempotency key must have 1 to {MAX_KEY_LEN} characters"
            )));
        }
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::invalid(
                "idempotency key must be visible ASCII characters",
            ));
        }
        Ok(Self {
            user_id,
            key: key.to_owned(),
            fingerprint,
        })
    }
}

/// The first result of a request, kept under its idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum StoredOutcome {
    /// A hold was placed.
    Hold(Reservation),
    /// A payment was made.
    Payment(Payment),
    /// Points were charged.
    Charge(Balance),
    /// A reservation was cancelled.
    Cancel(Reservation),
    /// A payment through a provider began (the attempt as first recorded). A struct variant:
    /// the attempt has a `kind` field of its own, which would collide with the tag.
    Attempt {
        /// The attempt.
        attempt: PaymentAttempt,
    },
}

/// A stored idempotency record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// The fingerprint of the first request.
    pub fingerprint: String,
    /// Its result.
    pub outcome: StoredOutcome,
}

impl IdempotencyRecord {
    /// The stored outcome if `fingerprint` is the same request, `idempotency_conflict` if not.
    /// Every backend calls this when it finds a record, so the rule lives in one place.
    pub fn replay(&self, fingerprint: &str) -> Result<StoredOutcome, Error> {
        if self.fingerprint == fingerprint {
            Ok(self.outcome.clone())
        } else {
            Err(Error::IdempotencyConflict)
        }
    }
}

impl StoredOutcome {
    /// The reservation, if this outcome is a hold.
    pub fn into_hold(self) -> Result<Reservation, Error> {
        match self {
            StoredOutcome::Hold(r) => Ok(r),
            _ => Err(Error::IdempotencyConflict),
        }
    }

    /// The payment, if this outcome is a payment.
    pub fn into_payment(self) -> Result<Payment, Error> {
        match self {
            StoredOutcome::Payment(p) => Ok(p),
            _ => Err(Error::IdempotencyConflict),
        }
    }

    /// The reservation, if this outcome is a cancel.
    pub fn into_cancel(self) -> Result<Reservation, Error> {
        match self {
            StoredOutcome::Cancel(r) => Ok(r),
            _ => Err(Error::IdempotencyConflict),
        }
    }

    /// The attempt, if this outcome is the start of a provider payment.
    pub fn into_attempt(self) -> Result<PaymentAttempt, Error> {
        match self {
            StoredOutcome::Attempt { attempt } => Ok(attempt),
            _ => Err(Error::IdempotencyConflict),
        }
    }

    /// The balance, if this outcome is a charge.
    pub fn into_charge(self) -> Result<Balance, Error> {
        match self {
            StoredOutcome::Charge(b) => Ok(b),
            _ => Err(Error::IdempotencyConflict),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use crate::money::Points;

    #[test]
    fn keys_are_checked() {
        let user = UserId(1);
        assert!(IdempotencyKey::new(user, "abc-123", "f".into()).is_ok());
        for bad in [
            "",
            "has space",
            "tab\t",
            "ünï",
            &"k".repeat(MAX_KEY_LEN + 1),
        ] {
            let err = IdempotencyKey::new(user, bad, "f".into()).expect_err(bad);
            assert_eq!(err.code(), ErrorCode::InvalidRequest);
        }
    }

    /// Stores keep outcomes as JSON: every kind must come back as itself (an attempt has a
    /// `kind` field of its own, which once collided with the tag and read back as a charge).
    #[test]
    fn every_outcome_survives_json() {
        use crate::ids::{AttemptId, ReservationId};
        use crate::provider::{AttemptKind, AttemptState, PaymentAttempt};
        let id = AttemptId::new();
        let attempt = PaymentAttempt {
            id,
            kind: AttemptKind::Charge,
            reservation_id: ReservationId::new(),
            user_id: UserId(1),
            amount: Points(300),
            key: PaymentAttempt::charge_key(id),
            charge_key: None,
            reason: None,
            state: AttemptState::Pending,
            created_at: chrono::DateTime::UNIX_EPOCH,
            deadline: chrono::DateTime::UNIX_EPOCH,
        };
        for outcome in [
            StoredOutcome::Attempt { attempt },
            StoredOutcome::Charge(Balance {
                user_id: UserId(1),
                balance: Points(5),
            }),
        ] {
            let json = serde_json::to_string(&outcome).expect("to json");
            let back: StoredOutcome = serde_json::from_str(&json).expect("from json");
            assert_eq!(back, outcome, "{json}");
        }
    }

    #[test]
    fn replay_returns_the_first_outcome_or_conflicts() {
        let record = IdempotencyRecord {
            fingerprint: "charge:5".into(),
            outcome: StoredOutcome::Charge(Balance {
                user_id: UserId(1),
                balance: Points(5),
            }),
        };
        assert_eq!(record.replay("charge:5").ok(), Some(record.outcome.clone()));
        assert!(matches!(
            record.replay("charge:6"),
            Err(Error::IdempotencyConflict)
        ));
        assert!(record.outcome.clone().into_hold().is_err());
    }
}
