//! The waiting queue (virtual waiting room): first come, first served, admitted at a rate.

use std::fmt::{self, Debug};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::ids::{ConcertId, UserId};

/// An opaque queue token.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct QueueToken(pub String);

impl QueueToken {
    /// The longest token any queue of this library issues or accepts.
    pub const MAX_LEN: usize = 128;

    /// 1 to [`Self::MAX_LEN`] visible ASCII characters: the least a token of any queue is.
    pub fn plausible(token: &str) -> bool {
        (1..=Self::MAX_LEN).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_graphic())
    }
}

impl fmt::Display for QueueToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a token stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum QueueStatus {
    /// Waiting; `position` 1 is next.
    Waiting {
        /// 1-based place in line.
        position: u64,
    },
    /// Admitted until `until`.
    Admitted {
        /// When the admission lapses.
        until: DateTime<Utc>,
    },
    /// The admission lapsed.
    Expired,
    /// The token ended before its admission lapsed: its holder paid for their holds, or left
    /// the line ([`WaitingQueue::leave`]). It admits nothing new (no hold), but a holder may
    /// still pay for the holds made while it was admitted.
    Done,
}

/// What a queue backend stores as the admission end of a token that ended early
/// ([`QueueStatus::Done`]): a time before any clock's `now`, so the token is over on every
/// instance whatever its clock reads.
pub const ENDED: DateTime<Utc> = DateTime::<Utc>::UNIX_EPOCH;

/// A queue token with its owner and status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueTicket {
    /// The token.
    pub token: QueueToken,
    /// Whose.
    pub user_id: UserId,
    /// For which concert.
    pub concert_id: ConcertId,
    /// Its status at the instant it was read.
    pub status: QueueStatus,
    /// Seconds until admission at the configured rate (0 unless waiting).
    pub estimated_wait_seconds: u64,
}

/// How fast and how many the queue admits; per concert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueConfig {
    /// Tokens admitted per second, at most.
    pub admit_per_sec: u32,
    /// Admitted, unexpired tokens at once, at most.
    pub max_active: u32,
    /// How long an admission lasts.
    pub active_ttl: Duration,
}

crate::__with_setters!(QueueConfig {
    with_admit_per_sec => admit_per_sec: u32,
    with_max_active => max_active: u32,
    with_active_ttl => active_ttl: Duration,
});

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            admit_per_sec: 500,
            max_active: 10_000,
            active_ttl: Duration::seconds(600),
        }
    }
}

impl QueueConfig {
    /// How many may be admitted in a tick `elapsed` after the previous one (`None`: the first
    /// tick), given `active` unexpired admissions: the rate's allowance, at most one second's
    /// worth, within `max_active`. Every queue backend calls this.
    pub fn admit_budget(&self, elapsed: Option<Duration>, active: u64) -> u64 {
        let rate = u64::from(self.admit_per_sec);
        let by_rate = match elapsed {
            None => rate,
            Some(e) => {
                let ms = u64::try_from(e.num_milliseconds()).unwrap_or(0);
                (rate.saturating_mul(ms) / 1000).min(rate)
            }
        };
        by_rate.min(u64::from(self.max_active).saturating_sub(active))
    }

    /// The estimated wait of the token at `position` (1-based).
    pub fn estimated_wait_seconds(&self, position: u64) -> u64 {
        match u64::from(self.admit_per_sec) {
            0 => u64::MAX,
            rate => position.div_ceil(rate),
        }
    }
}

/// What a queue backend stores about a token, from which its status follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    /// Whose.
    pub user_id: UserId,
    /// For which concert.
    pub concert_id: ConcertId,
    /// Arrival order in the concert's line, from 1.
    pub seq: u64,
    /// When its admission ends, if it was admitted.
    pub admitted_until: Option<DateTime<Utc>>,
    /// The highest `seq` of the concert admitted so far (admission is in `seq` order).
    pub admitted_through: u64,
}

impl QueueConfig {
    /// The ticket of a stored entry at `now`: admitted until `admitted_until` (exclusive), then
    /// expired; while waiting, its position counts from the last admitted. Every queue backend
    /// calls this, so the rule lives in one place.
    pub fn ticket(&self, token: QueueToken, entry: &QueueEntry, now: DateTime<Utc>) -> QueueTicket {
        let status = match entry.admitted_until {
            Some(until) if until == ENDED => QueueStatus::Done,
            Some(until) if until > now => QueueStatus::Admitted { until },
            Some(_) => QueueStatus::Expired,
            None => QueueStatus::Waiting {
                position: entry.seq.saturating_sub(entry.admitted_through),
            },
        };
        let estimated_wait_seconds = match status {
            QueueStatus::Waiting { position } => self.estimated_wait_seconds(position),
            _ => 0,
        };
        QueueTicket {
            token,
            user_id: entry.user_id,
            concert_id: entry.concert_id,
            status,
            estimated_wait_seconds,
        }
    }
}

/// How many are in one concert's line at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLength {
    /// The concert.
    pub concert_id: ConcertId,
    /// Tokens still waiting.
    pub waiting: u64,
    /// Tokens whose admission is still valid.
    pub admitted: u64,
}

/// A waiting room per concert: FIFO, admitted by rate and max-active, admissions expire.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait WaitingQueue: Send + Sync + Debug + 'static {
    /// Join the line for a concert. The same user asking again for the same concert gets the
    /// same token back (`false`) unless their admission has lapsed; a new one is `true`.
    async fn enqueue(
        &self,
        user: UserId,
        concert: ConcertId,
        now: DateTime<Utc>,
    ) -> Result<(QueueTicket, bool)>;

    /// A token's status at `now`; `not_found` for an unknown token.
    async fn status(&self, token: &QueueToken, now: DateTime<Utc>) -> Result<QueueTicket>;

    /// End a token at `now`: a waiting token leaves the line (it is never admitted), an
    /// admitted one gives its place back at once, so the next `admit` can let someone else in
    /// (its holder paid, or gave up). The token is answered `expired` from then on, whatever
    /// the clock of any instance reads, and its user joining again gets a new token at the back
    /// of the line. Ending a token that already ended changes nothing; `not_found` for an
    /// unknown token, and for one forgotten after its grace period (as [`Self::status`]).
    /// Positions of the tokens behind one that left are not renumbered: a position is an
    /// estimate, admission order is exact.
    async fn leave(&self, token: &QueueToken, now: DateTime<Utc>) -> Result<()>;

    /// Admit the next tokens of every concert as the rate and max-active allow; returns how
    /// many were admitted. Safe to run from several places at once.
    async fn admit(&self, now: DateTime<Utc>) -> Result<u64>;

    /// For every concert someone has joined (or tried to join) the line of: how many wait and
    /// how many hold an admission still valid at `now`. A snapshot for gauges and dashboards,
    /// not a guarantee.
    async fn lengths(&self, now: DateTime<Utc>) -> Result<Vec<QueueLength>>;

    /// Whether `token` has the form this queue issues. Callers check it before anything is
    /// looked up, counted or remembered for a token, so a made-up token costs nothing. The
    /// default accepts 1 to [`QueueToken::MAX_LEN`] visible ASCII characters.
    fn is_well_formed(&self, token: &str) -> bool {
        QueueToken::plausible(token)
    }
}

/// `WaitingQueue` stays usable as a trait object (services hold `Arc<dyn WaitingQueue>`): a change
/// that breaks that fails to compile here, beside the trait, not in a backend.
const _: fn(&dyn WaitingQueue) = |_| {};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_is_waiting_then_admitted_then_expired() {
        let c = QueueConfig::default();
        let now = Utc::now();
        let mut entry = QueueEntry {
            user_id: UserId(1),
            concert_id: ConcertId(2),
            seq: 7,
            admitted_until: None,
            admitted_through: 4,
        };
        let t = || QueueToken("t".into());
        assert_eq!(
            c.ticket(t(), &entry, now).status,
            QueueStatus::Waiting { position: 3 }
        );
        entry.admitted_until = Some(now + Duration::seconds(1));
        let admitted = c.ticket(t(), &entry, now);
        assert_eq!(
            admitted.status,
            QueueStatus::Admitted {
                until: now + Duration::seconds(1)
            }
        );
        assert_eq!(admitted.estimated_wait_seconds, 0);
        assert_eq!(
            c.ticket(t(), &entry, now + Duration::seconds(1)).status,
            QueueStatus::Expired
        );
        entry.admitted_until = Some(ENDED);
        assert_eq!(
            c.ticket(t(), &entry, now - Duration::days(365 * 40)).status,
            QueueStatus::Done,
            "an ended token is over whatever the clock reads"
        );
    }

    #[test]
    fn budget_follows_rate_and_max_active() {
        let c = QueueConfig {
            admit_per_sec: 10,
            max_active: 15,
            active_ttl: Duration::seconds(60),
        };
        assert_eq!(c.admit_budget(None, 0), 10);
        assert_eq!(c.admit_budget(Some(Duration::milliseconds(500)), 0), 5);
        assert_eq!(c.admit_budget(Some(Duration::seconds(30)), 0), 10);
        assert_eq!(c.admit_budget(Some(Duration::seconds(1)), 12), 3);
        assert_eq!(c.admit_budget(Some(Duration::seconds(1)), 20), 0);
        assert_eq!(c.admit_budget(Some(Duration::seconds(-1)), 0), 0);
        assert_eq!(c.estimated_wait_seconds(25), 3);
    }
}
