//! The in-memory [`WaitingQueue`]: one FIFO line per concert, admitted by rate and max-active.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Utc};
use ticketing_core::{
    ConcertId, ENDED, Error, QueueConfig, QueueEntry, QueueLength, QueueStatus, QueueTicket,
    QueueToken, Result, UserId, WaitingQueue, async_trait,
};
use uuid::Uuid;

use crate::sync::{Arc, Mutex, lock};

#[derive(Debug)]
struct Entry {
    user: UserId,
    concert: ConcertId,
    /// Place in the concert's line, from 1.
    seq: u64,
    admitted_until: Option<DateTime<Utc>>,
    /// Whether the token is in its room's `admitted` list (from admission until it lapses).
    in_admitted: bool,
}

impl Entry {
    fn ended(&self) -> bool {
        self.admitted_until == Some(ENDED)
    }
}

impl Room {
    /// Take the tokens that left from the front of the line (the next admission would skip
    /// them) and, once they are half of it, from everywhere in it; they are forgotten one
    /// `active_ttl` from `now`.
    fn sweep_left(&mut self, entries: &HashMap<QueueToken, Entry>, now: DateTime<Utc>) {
        let gone = |t: &QueueToken| entries.get(t).is_none_or(|e| e.admitted_until.is_some());
        while self.waiting.front().is_some_and(gone) {
            if let Some(token) = self.waiting.pop_front() {
                self.left_waiting = self.left_waiting.saturating_sub(1);
                self.lapsed.push_back((now, token));
            }
        }
        if self.left_waiting > 0 && self.left_waiting * 2 >= self.waiting.len() as u64 {
            let mut left = Vec::new();
            self.waiting.retain(|t| {
                let g = gone(t);
                if g {
                    left.push(t.clone());
                }
                !g
            });
            self.left_waiting = 0;
            self.lapsed.extend(left.into_iter().map(|t| (now, t)));
        }
    }

    fn active(&self) -> u64 {
        (self.admitted.len() as u64).saturating_sub(self.released)
    }
}

#[derive(Debug, Default)]
struct Room {
    last_seq: u64,
    /// The highest `seq` admitted so far (admission is strictly in `seq` order).
    admitted_through: u64,
    waiting: VecDeque<QueueToken>,
    /// Tokens of `waiting` that left the line: skipped (and uncounted) when admission reaches
    /// them, or swept out together once they are half the line, so leaving costs O(1)
    /// amortized however long the line, and the line never keeps more than twice its live
    /// tokens.
    left_waiting: u64,
    /// Admitted tokens and when their admission lapses, soonest first.
    admitted: VecDeque<(DateTime<Utc>, QueueToken)>,
    /// Tokens of `admitted` that left before their admission lapsed: their places are free
    /// (not counted as active), and they leave `admitted` when they would have lapsed.
    released: u64,
    /// Tokens whose admission lapsed, oldest first: still answered `expired` for one more
    /// `active_ttl`, then forgotten (so the queue's memory follows the live load, not every
    /// buyer ever seen).
    lapsed: VecDeque<(DateTime<Utc>, QueueToken)>,
    last_admit: Option<DateTime<Utc>>,
}

#[derive(Debug, Default)]
struct State {
    rooms: HashMap<ConcertId, Room>,
    entries: HashMap<QueueToken, Entry>,
    by_user: HashMap<(UserId, ConcertId), QueueToken>,
}

/// A waiting room per concert, in process memory.
#[derive(Debug, Clone)]
pub struct MemoryQueue {
    config: QueueConfig,
    state: Arc<Mutex<State>>,
}

impl MemoryQueue {
    /// An empty queue admitting as `config` says.
    pub fn new(config: QueueConfig) -> Self {
        Self {
            config,
            state: Arc::new(Mutex::new(State::default())),
        }
    }

    /// How many tokens the queue remembers now (waiting, admitted, lapsed but not yet
    /// forgotten), for gauges: what its memory follows.
    pub fn remembered_tokens(&self) -> usize {
        lock(&self.state).entries.len()
    }

    fn ticket(&self, state: &State, token: &QueueToken, now: DateTime<Utc>) -> Result<QueueTicket> {
        let entry = state
            .entries
            .get(token)
            .ok_or_else(|| Error::not_found("queue token", token))?;
        let admitted_through = state
            .rooms
            .get(&entry.concert)
            .map_or(0, |r| r.admitted_through);
        let stored = QueueEntry {
            user_id: entry.user,
            concert_id: entry.concert,
            seq: entry.seq,
            admitted_until: entry.admitted_until,
            admitted_through,
        };
        Ok(self.config.ticket(token.clone(), &stored, now))
    }
}

#[async_trait]
impl WaitingQueue for MemoryQueue {
    async fn enqueue(
        &self,
        user: UserId,
        concert: ConcertId,
        now: DateTime<Utc>,
    ) -> Result<(QueueTicket, bool)> {
        let mut state = lock(&self.state);
        if let Some(token) = state.by_user.get(&(user, concert)).cloned() {
            let ticket = self.ticket(&state, &token, now)?;
            if !matches!(ticket.status, QueueStatus::Expired | QueueStatus::Done) {
                return Ok((ticket, false));
            }
        }
        let token = QueueToken(Uuid::new_v4().simple().to_string());
        let room = state.rooms.entry(concert).or_default();
        room.last_seq += 1;
        let seq = room.last_seq;
        room.waiting.push_back(token.clone());
        state.entries.insert(
            token.clone(),
            Entry {
                user,
                concert,
                seq,
                admitted_until: None,
                in_admitted: false,
            },
        );
        state.by_user.insert((user, concert), token.clone());
        Ok((self.ticket(&state, &token, now)?, true))
    }

    async fn status(&self, token: &QueueToken, now: DateTime<Utc>) -> Result<QueueTicket> {
        self.ticket(&lock(&self.state), token, now)
    }

    async fn leave(&self, token: &QueueToken, now: DateTime<Utc>) -> Result<()> {
        let mut state = lock(&self.state);
        let State { rooms, entries, .. } = &mut *state;
        let entry = entries
            .get_mut(token)
            .ok_or_else(|| Error::not_found("queue token", token))?;
        let was = entry.admitted_until;
        if entry.ended() || was.is_some_and(|until| until <= now) {
            return Ok(()); // Already over.
        }
        entry.admitted_until = Some(ENDED);
        let in_admitted = entry.in_admitted;
        let room = rooms.entry(entry.concert).or_default();
        if was.is_none() {
            // Waiting: out of the line when admission gets to it, or swept out with others.
            room.left_waiting += 1;
            room.sweep_left(entries, now);
        } else if in_admitted {
            // Admitted: the place is free at once; the token leaves `admitted` when it
            // would have lapsed. (One already out of `admitted`, lapsed by an admission that
            // read a later clock than this call's `now`, held no place any more.)
            room.released += 1;
        }
        Ok(())
    }

    async fn admit(&self, now: DateTime<Utc>) -> Result<u64> {
        let mut state = lock(&self.state);
        let State {
            rooms,
            entries,
            by_user,
        } = &mut *state;
        let mut total = 0;
        for room in rooms.values_mut() {
            // Soonest first: the lapsed ones are at the front (no pass over the live ones).
            while room
                .admitted
                .front()
                .is_some_and(|(until, _)| *until <= now)
            {
                if let Some((until, token)) = room.admitted.pop_front() {
                    if let Some(entry) = entries.get_mut(&token) {
                        entry.in_admitted = false;
                        if entry.ended() {
                            room.released = room.released.saturating_sub(1);
                        }
                    }
                    room.lapsed.push_back((until, token));
                }
            }
            room.sweep_left(entries, now);
            while let Some((until, _)) = room.lapsed.front() {
                if *until + self.config.active_ttl > now {
                    break;
                }
                if let Some((_, token)) = room.lapsed.pop_front()
                    && let Some(entry) = entries.remove(&token)
                    && by_user.get(&(entry.user, entry.concert)) == Some(&token)
                {
                    by_user.remove(&(entry.user, entry.concert));
                }
            }
            let elapsed = room.last_admit.map(|t| now - t);
            let budget = self.config.admit_budget(elapsed, room.active());
            let n = budget.min((room.waiting.len() as u64).saturating_sub(room.left_waiting));
            if n == 0 {
                continue;
            }
            let until = now + self.config.active_ttl;
            let mut admitted = 0;
            while admitted < n {
                let Some(token) = room.waiting.pop_front() else {
                    break;
                };
                let Some(entry) = entries.get_mut(&token) else {
                    room.left_waiting = room.left_waiting.saturating_sub(1);
                    continue;
                };
                if entry.admitted_until.is_some() {
                    // It left the line while waiting.
                    room.left_waiting = room.left_waiting.saturating_sub(1);
                    room.lapsed.push_back((now, token));
                    continue;
                }
                entry.admitted_until = Some(until);
                entry.in_admitted = true;
                room.admitted_through = room.admitted_through.max(entry.seq);
                // In order of lapse (at the back, unless the caller's clock went back).
                let at = room.admitted.partition_point(|(u, _)| *u <= until);
                room.admitted.insert(at, (until, token));
                admitted += 1;
            }
            room.last_admit = Some(now);
            total += admitted;
        }
        Ok(total)
    }

    async fn lengths(&self, now: DateTime<Utc>) -> Result<Vec<QueueLength>> {
        let state = lock(&self.state);
        let mut lengths: Vec<QueueLength> = state
            .rooms
            .iter()
            .map(|(concert, room)| QueueLength {
                concert_id: *concert,
                waiting: (room.waiting.len() as u64).saturating_sub(room.left_waiting),
                // Those that left early are still in `admitted` (with a later `until`) until
                // the admission after their lapse time: `released` counts them.
                admitted: (room
                    .admitted
                    .iter()
                    .filter(|(until, _)| *until > now)
                    .count() as u64)
                    .saturating_sub(room.released),
            })
            .collect();
        lengths.sort_by_key(|l| l.concert_id);
        Ok(lengths)
    }

    /// The tokens this queue issues: 32 lowercase hexadecimal digits.
    fn is_well_formed(&self, token: &str) -> bool {
        token.len() == 32
            && token
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use chrono::Duration;

    /// Joining and leaving over and over, behind a line that does not move (max-active full),
    /// must not grow the line: tokens that left are swept out and then forgotten, so what the
    /// queue keeps follows the buyers still waiting.
    #[tokio::test]
    async fn tokens_that_left_are_swept_out_and_forgotten() {
        let queue = MemoryQueue::new(
            QueueConfig::default()
                .with_admit_per_sec(1_000)
                .with_max_active(1)
                .with_active_ttl(Duration::seconds(60)),
        );
        let t0 = Utc::now();
        queue
            .enqueue(UserId(1), ConcertId(1), t0)
            .await
            .expect("enqueue");
        queue.admit(t0).await.expect("admit");
        // One who waits, ahead of the churn, so nobody who left is at the front.
        queue
            .enqueue(UserId(2), ConcertId(1), t0)
            .await
            .expect("enqueue");
        for i in 0..10_000 {
            let user = UserId(3 + i % 2);
            let (t, _) = queue
                .enqueue(user, ConcertId(1), t0)
                .await
                .expect("enqueue");
            queue.leave(&t.token, t0).await.expect("leave");
        }
        {
            let state = lock(&queue.state);
            let room = &state.rooms[&ConcertId(1)];
            assert!(
                room.waiting.len() <= 3,
                "the line kept {} tokens",
                room.waiting.len()
            );
        }
        let lengths = queue.lengths(t0).await.expect("lengths");
        assert_eq!((lengths[0].waiting, lengths[0].admitted), (1, 1));
        queue
            .admit(t0 + Duration::seconds(121))
            .await
            .expect("admit");
        assert!(
            queue.remembered_tokens() <= 4,
            "remembered {}",
            queue.remembered_tokens()
        );
    }

    /// Leaving with an older clock than the admission that already lapsed the token (a
    /// payment that read the clock before a slow store call) frees no place it does not hold:
    /// max-active stays exact.
    #[tokio::test]
    async fn leaving_after_the_lapse_with_an_older_clock_frees_no_place() {
        let queue = MemoryQueue::new(
            QueueConfig::default()
                .with_admit_per_sec(1_000)
                .with_max_active(1)
                .with_active_ttl(Duration::seconds(60)),
        );
        let t0 = Utc::now();
        let (a, _) = queue
            .enqueue(UserId(1), ConcertId(1), t0)
            .await
            .expect("enqueue");
        queue.admit(t0).await.expect("admit");
        queue
            .admit(t0 + Duration::seconds(61))
            .await
            .expect("lapse");
        queue
            .leave(&a.token, t0 + Duration::seconds(30))
            .await
            .expect("leave with an old clock");
        for u in 2..=4 {
            queue
                .enqueue(UserId(u), ConcertId(1), t0)
                .await
                .expect("enqueue");
        }
        let later = t0 + Duration::seconds(62);
        assert_eq!(
            queue.admit(later).await.expect("admit"),
            1,
            "max active is 1"
        );
        let lengths = queue.lengths(later).await.expect("lengths");
        assert_eq!((lengths[0].waiting, lengths[0].admitted), (2, 1));
    }

    /// A token that left is over whatever the clock says afterwards (a clock re-synced
    /// backwards must not make it admitted again), and its place stays free.
    #[tokio::test]
    async fn a_token_that_left_stays_over_when_the_clock_goes_back() {
        let queue = MemoryQueue::new(
            QueueConfig::default()
                .with_admit_per_sec(1_000)
                .with_max_active(1)
                .with_active_ttl(Duration::seconds(60)),
        );
        let t0 = Utc::now();
        let (a, _) = queue
            .enqueue(UserId(1), ConcertId(1), t0)
            .await
            .expect("enqueue");
        let (b, _) = queue
            .enqueue(UserId(2), ConcertId(1), t0)
            .await
            .expect("enqueue");
        queue.admit(t0).await.expect("admit");
        queue.leave(&a.token, t0).await.expect("leave");
        queue.leave(&b.token, t0).await.expect("leave waiting");
        let before = t0 - Duration::seconds(30);
        queue.leave(&a.token, before).await.expect("again, earlier");
        queue.leave(&b.token, before).await.expect("again, earlier");
        for t in [&a.token, &b.token] {
            let status = queue.status(t, before).await.expect("status").status;
            assert_eq!(status, QueueStatus::Done);
        }
        let (c, _) = queue
            .enqueue(UserId(3), ConcertId(1), t0)
            .await
            .expect("enqueue");
        queue.admit(t0 + Duration::seconds(1)).await.expect("admit");
        assert!(matches!(
            queue
                .status(&c.token, t0 + Duration::seconds(1))
                .await
                .expect("status")
                .status,
            QueueStatus::Admitted { .. }
        ));
        let lengths = queue
            .lengths(t0 + Duration::seconds(1))
            .await
            .expect("lengths");
        assert_eq!((lengths[0].waiting, lengths[0].admitted), (0, 1));
    }

    /// A line of a million buyers must not be remembered forever: a token whose admission
    /// lapsed is answered `expired` for one more admission time, then forgotten.
    #[tokio::test]
    async fn lapsed_tokens_are_forgotten_after_a_grace_period() {
        let queue = MemoryQueue::new(
            QueueConfig::default()
                .with_admit_per_sec(1_000)
                .with_max_active(1_000)
                .with_active_ttl(Duration::seconds(60)),
        );
        let t0 = Utc::now();
        let mut tokens = Vec::new();
        for u in 1..=100 {
            let (ticket, _) = queue
                .enqueue(UserId(u), ConcertId(1), t0)
                .await
                .expect("enqueue");
            tokens.push(ticket.token);
        }
        assert_eq!(
            queue.admit(t0 + Duration::seconds(1)).await.expect("admit"),
            100
        );
        let lapsed = t0 + Duration::seconds(62);
        queue.admit(lapsed).await.expect("admit");
        let status = queue.status(&tokens[0], lapsed).await.expect("status");
        assert_eq!(status.status, QueueStatus::Expired);
        assert_eq!(
            lock(&queue.state).entries.len(),
            100,
            "kept through the grace"
        );

        let later = t0 + Duration::seconds(122);
        queue.admit(later).await.expect("admit");
        let kept = {
            let state = lock(&queue.state);
            (state.entries.len(), state.by_user.len())
        };
        assert_eq!(kept, (0, 0));
        assert_eq!(
            queue
                .status(&tokens[0], later)
                .await
                .map_err(|e| e.code())
                .err(),
            Some(ticketing_core::ErrorCode::NotFound)
        );
        // The user can queue again.
        let (again, created) = queue
            .enqueue(UserId(1), ConcertId(1), later)
            .await
            .expect("enqueue");
        assert!(created);
        assert_ne!(again.token, tokens[0]);
    }
}
