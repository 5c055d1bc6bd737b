//! The in-memory [`TicketStore`].

use std::collections::{BTreeMap, HashMap, VecDeque};

use chrono::{DateTime, Utc};
use ticketing_core::provider::{
    BeginPaymentCommand, ChargeSettled, PaymentAttempt, SettleChargeCommand, SettleRefundCommand,
};
use ticketing_core::{
    AttemptId, Balance, CancelCommand, Catalog, ChargeCommand, Concert, ConcertId, DomainEvent,
    Error, EventKind, FencingToken, HoldCommand, IdempotencyKey, IdempotencyRecord, OptionId,
    OptionSummary, OutboxRecord, PayCommand, Payment, PaymentId, Points, Reservation,
    ReservationId, Result, SaleWindow, Seat, SeatId, SeatState, SeatView, ShowOption,
    StoredOutcome, TicketStore, UserId, async_trait,
    rules::{self, Action},
};

use crate::seat_table::{SeatCell, SeatTable, Strategy};
use crate::sync::{Arc, Mutex, RwLock, lock, read, write};

mod provider;

#[derive(Debug, Default)]
struct CatalogState {
    concerts: BTreeMap<ConcertId, Concert>,
    options: BTreeMap<OptionId, ShowOption>,
    option_seats: HashMap<OptionId, Vec<SeatId>>,
}

/// The sale window of an option (`not_found` for an unknown one).
fn sale_window(catalog: &CatalogState, option: OptionId) -> Result<SaleWindow> {
    catalog
        .options
        .get(&option)
        .map(ShowOption::sale_window)
        .ok_or_else(|| Error::not_found("option", option))
}

/// One user's wallet, reservations and idempotency records, changed under one lock.
#[derive(Debug, Default)]
struct UserBook {
    balance: Points,
    reservations: Reservations,
    idempotency: HashMap<String, IdempotencyRecord>,
    /// Payments through a provider (charges and refunds) of this user's reservations.
    attempts: Vec<PaymentAttempt>,
    /// Removed from the store (it was empty after a failed operation); whoever still holds it
    /// must look the user up again.
    retired: bool,
}

/// One user's reservations in id order (UUID v7: creation order). A user has a few, so a sorted
/// vector: one small allocation, where a B-tree map allocates a whole leaf node per user
/// (measured: that allocation was ~13% of a rush of one-hold buyers).
#[derive(Debug, Default)]
struct Reservations(Vec<Reservation>);

impl Reservations {
    fn position(&self, id: &ReservationId) -> Result<usize, usize> {
        self.0.binary_search_by(|r| r.id.cmp(id))
    }

    fn get(&self, id: &ReservationId) -> Option<&Reservation> {
        self.position(id).ok().map(|i| &self.0[i])
    }

    /// Add or replace (by id).
    fn insert(&mut self, id: ReservationId, reservation: Reservation) {
        debug_assert_eq!(id, reservation.id);
        match self.position(&id) {
            Ok(i) => self.0[i] = reservation,
            Err(i) => {
                if self.0.capacity() == 0 {
                    // Most buyers hold once: start with room for exactly one.
                    self.0.reserve_exact(1);
                }
                self.0.insert(i, reservation)
            }
        }
    }

    fn values(&self) -> std::slice::Iter<'_, Reservation> {
        self.0.iter()
    }
}

impl UserBook {
    /// Nothing worth keeping: no points, no reservations, no idempotency records.
    fn is_empty(&self) -> bool {
        self.balance == Points(0)
            && self.reservations.0.is_empty()
            && self.idempotency.is_empty()
            && self.attempts.is_empty()
    }

    fn replay(&self, key: Option<&IdempotencyKey>) -> Result<Option<StoredOutcome>> {
        match key.and_then(|k| self.idempotency.get(&k.key).map(|r| (k, r))) {
            Some((k, record)) => record.replay(&k.fingerprint).map(Some),
            None => Ok(None),
        }
    }

    /// Keep the outcome under the key, if any; returns the key's name to log.
    fn remember(&mut self, key: Option<IdempotencyKey>, outcome: StoredOutcome) -> Option<String> {
        let k = key?;
        let name = k.key.clone();
        self.idempotency.insert(
            k.key,
            IdempotencyRecord {
                fingerprint: k.fingerprint,
                outcome,
            },
        );
        Some(name)
    }
}

#[derive(Debug, Default)]
struct Outbox {
    next_seq: u64,
    pending: BTreeMap<u64, OutboxRecord>,
}

/// How many records a [`MemoryStore`] keeps ([`MemoryStore::sizes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreSizes {
    /// Users with points, reservations or idempotency records.
    pub users: usize,
    /// Reservations, whatever their status (a user's history).
    pub reservations: usize,
    /// Idempotency records not yet past the retention window.
    pub idempotency_records: usize,
    /// Outbox events not yet acknowledged.
    pub outbox_pending: usize,
    /// Payment attempts through a provider, whatever their state (the payments' history).
    pub payment_attempts: usize,
    /// Of those, the ones whose outcome is not known yet.
    pub payment_attempts_pending: usize,
}

/// The embedded store: everything in process memory, nothing survives a restart.
///
/// Seat writes are guarded by the [`Strategy`] chosen at construction; a user's wallet,
/// reservations and idempotency records change under that user's lock. Locks are taken in one
/// order, the catalog's read lock (held by holds, payments and cancels while they decide, so a
/// sale window change waits for them), then a user's lock, then seats, so no two operations can
/// wait on each other in a cycle.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    catalog: RwLock<CatalogState>,
    seats: SeatTable,
    users: RwLock<HashMap<UserId, Arc<Mutex<UserBook>>>>,
    owners: RwLock<HashMap<ReservationId, UserId>>,
    /// Whose book holds each payment attempt.
    attempt_owners: RwLock<HashMap<AttemptId, UserId>>,
    /// The attempts still pending, oldest first, and whose they are: what the recovery job
    /// reads, without scanning every attempt ever made. A leaf lock.
    pending_attempts: Mutex<BTreeMap<(DateTime<Utc>, AttemptId), UserId>>,
    outbox: Mutex<Outbox>,
    /// Every idempotency record kept, in the order they were made: what `prune` forgets first.
    /// A leaf lock: taken under a user's book lock, never the other way round.
    idempotency_log: Mutex<VecDeque<(DateTime<Utc>, UserId, String)>>,
}

impl MemoryStore {
    /// An empty store guarded by `strategy`.
    pub fn new(strategy: Strategy) -> Self {
        Self {
            inner: Arc::new(Inner {
                catalog: RwLock::new(CatalogState::default()),
                seats: SeatTable::new(strategy),
                users: RwLock::new(HashMap::new()),
                owners: RwLock::new(HashMap::new()),
                attempt_owners: RwLock::new(HashMap::new()),
                pending_attempts: Mutex::new(BTreeMap::new()),
                outbox: Mutex::new(Outbox::default()),
                idempotency_log: Mutex::new(VecDeque::new()),
            }),
        }
    }

    /// An empty store with per-seat locks.
    #[cfg(feature = "pessimistic")]
    pub fn pessimistic() -> Self {
        Self::new(Strategy::Pessimistic)
    }

    /// An empty store with versioned compare-and-set (16 retries).
    #[cfg(feature = "optimistic")]
    pub fn optimistic() -> Self {
        Self::new(Strategy::Optimistic { max_retries: 16 })
    }

    /// How many records the store keeps now, for gauges: what its memory follows.
    pub fn sizes(&self) -> StoreSizes {
        let users: Vec<_> = read(&self.inner.users).values().cloned().collect();
        let reservations = users.iter().map(|b| lock(b).reservations.0.len()).sum();
        StoreSizes {
            users: users.len(),
            reservations,
            idempotency_records: lock(&self.inner.idempotency_log).len(),
            outbox_pending: lock(&self.inner.outbox).pending.len(),
            payment_attempts: read(&self.inner.attempt_owners).len(),
            payment_attempts_pending: lock(&self.inner.pending_attempts).len(),
        }
    }

    /// The strategy guarding seat writes.
    pub fn strategy(&self) -> Strategy {
        self.inner.seats.strategy()
    }

    fn book(&self, user: UserId) -> Arc<Mutex<UserBook>> {
        if let Some(book) = read(&self.inner.users).get(&user) {
            return book.clone();
        }
        write(&self.inner.users).entry(user).or_default().clone()
    }

    /// Run `change` on `user`'s book, made if missing. A book that is still empty after a failed
    /// change is removed again, so refused requests of made-up users leave nothing behind.
    fn with_book<T>(
        &self,
        user: UserId,
        change: impl FnOnce(&mut UserBook) -> Result<T>,
    ) -> Result<T> {
        let mut change = Some(change);
        loop {
            let book = self.book(user);
            let mut book = lock(&book);
            if book.retired {
                // Removed after we looked it up; the next lookup finds or makes the new one.
                continue;
            }
            let Some(change) = change.take() else {
                unreachable!("the change runs once");
            };
            let result = change(&mut book);
            if result.is_err() {
                self.retire_if_empty(user, &mut book);
            }
            return result;
        }
    }

    /// Note a new idempotency record (called under the user's book lock).
    fn log_key(&self, at: DateTime<Utc>, user: UserId, key: Option<String>) {
        if let Some(key) = key {
            lock(&self.inner.idempotency_log).push_back((at, user, key));
        }
    }

    /// Remove a book that holds nothing any more (called under its lock, which `book` is).
    fn retire_if_empty(&self, user: UserId, book: &mut UserBook) {
        if book.is_empty() && !book.retired {
            // Only the holder of a book's lock removes it, and nobody makes a new one for this
            // user until it is gone: the map's entry is this very book.
            book.retired = true;
            write(&self.inner.users).remove(&user);
        }
    }

    fn existing_book(&self, user: UserId) -> Option<Arc<Mutex<UserBook>>> {
        read(&self.inner.users).get(&user).cloned()
    }

    fn owner(&self, id: ReservationId) -> Result<UserId> {
        read(&self.inner.owners)
            .get(&id)
            .copied()
            .ok_or_else(|| Error::not_found("reservation", id))
    }

    fn emit(&self, at: DateTime<Utc>, kind: EventKind) {
        let mut outbox = lock(&self.inner.outbox);
        outbox.next_seq += 1;
        let seq = outbox.next_seq;
        outbox.pending.insert(
            seq,
            OutboxRecord {
                seq,
                event: DomainEvent::new(at, kind),
            },
        );
    }

    /// Release the seats of `reservation` (cancel, expiry): seats no longer its own stay as
    /// they are.
    fn release(&self, reservation: &Reservation, fence: Option<FencingToken>) -> Result<()> {
        let cells = self.inner.seats.cells(&reservation.seat_ids)?;
        self.inner.seats.transact(&cells, fence, |states| {
            Ok(states
                .iter()
                .map(|s| rules::release_seat(*s, reservation.id))
                .collect())
        })
    }
}

#[async_trait]
impl TicketStore for MemoryStore {
    async fn seed(&self, catalog: &Catalog) -> Result<()> {
        let mut state = write(&self.inner.catalog);
        rules::validate_catalog(
            catalog,
            |c| state.concerts.contains_key(&c),
            |o| state.options.contains_key(&o),
            // Taken seat ids are refused by the seat table's insert below, atomically.
            |_| false,
        )?;
        if !self.inner.seats.insert(&catalog.seats) {
            return Err(Error::invalid("a seat id is already taken"));
        }
        for c in &catalog.concerts {
            state.concerts.insert(c.id, c.clone());
        }
        for o in &catalog.options {
            state.options.insert(o.id, o.clone());
        }
        for s in &catalog.seats {
            state
                .option_seats
                .entry(s.option_id)
                .or_default()
                .push(s.id);
        }
        for ids in state.option_seats.values_mut() {
            ids.sort_unstable();
        }
        Ok(())
    }

    async fn concerts(&self) -> Result<Vec<Concert>> {
        Ok(read(&self.inner.catalog)
            .concerts
            .values()
            .cloned()
            .collect())
    }

    async fn concert(&self, concert: ConcertId) -> Result<Concert> {
        read(&self.inner.catalog)
            .concerts
            .get(&concert)
            .cloned()
            .ok_or_else(|| Error::not_found("concert", concert))
    }

    async fn options(&self, concert: ConcertId, now: DateTime<Utc>) -> Result<Vec<OptionSummary>> {
        let (options, seat_ids): (Vec<ShowOption>, Vec<Vec<SeatId>>) = {
            let state = read(&self.inner.catalog);
            if !state.concerts.contains_key(&concert) {
                return Err(Error::not_found("concert", concert));
            }
            state
                .options
                .values()
                .filter(|o| o.concert_id == concert)
                .map(|o| {
                    (
                        o.clone(),
                        state.option_seats.get(&o.id).cloned().unwrap_or_default(),
                    )
                })
                .unzip()
        };
        options
            .into_iter()
            .zip(seat_ids)
            .map(|(option, ids)| {
                let cells = self.inner.seats.cells(&ids)?;
                let available = cells
                    .iter()
                    .filter(|c| rules::effective_seat_state(c.state(), now) == SeatState::Available)
                    .count() as u64;
                Ok(OptionSummary {
                    option,
                    total_seats: ids.len() as u64,
                    available_seats: available,
                })
            })
            .collect()
    }

    async fn option(&self, option: OptionId) -> Result<ShowOption> {
        read(&self.inner.catalog)
            .options
            .get(&option)
            .cloned()
            .ok_or_else(|| Error::not_found("option", option))
    }

    async fn set_sale_window(
        &self,
        option: OptionId,
        opens_at: Option<DateTime<Utc>>,
        closes_at: Option<DateTime<Utc>>,
    ) -> Result<ShowOption> {
        // Waits for the holds, payments and cancels in progress (they keep the catalog read
        // while they decide and store): every one stored after this returns sees the window.
        let mut state = write(&self.inner.catalog);
        let stored = state
            .options
            .get_mut(&option)
            .ok_or_else(|| Error::not_found("option", option))?;
        let next = rules::with_sale_window(stored, opens_at, closes_at)?;
        *stored = next.clone();
        Ok(next)
    }

    async fn seats(&self, option: OptionId, now: DateTime<Utc>) -> Result<Vec<SeatView>> {
        let ids = read(&self.inner.catalog)
            .option_seats
            .get(&option)
            .cloned()
            .ok_or_else(|| Error::not_found("option", option))?;
        Ok(self
            .inner
            .seats
            .cells(&ids)?
            .iter()
            .map(|c: &Arc<SeatCell>| SeatView {
                seat: c.seat().clone(),
                status: rules::effective_seat_state(c.state(), now).status(),
            })
            .collect())
    }

    async fn hold(&self, cmd: HoldCommand) -> Result<Reservation> {
        let cells = self.inner.seats.cells(&cmd.seat_ids)?;
        // Held until the hold is stored, so a sale window changed meanwhile waits for it (see
        // `set_sale_window`). Lock order: catalog, then a user's book, then seats.
        let catalog = read(&self.inner.catalog);
        let sale = sale_window(&catalog, cmd.option_id)?;
        self.with_book(cmd.user_id, |book| {
            if let Some(outcome) = book.replay(cmd.idempotency.as_ref())? {
                return outcome.into_hold();
            }
            let owned = rules::seats_owned(book.reservations.values(), cmd.option_id, cmd.now);
            let seats: Vec<&Seat> = cells.iter().map(|c| c.seat()).collect();
            let d = self
                .inner
                .seats
                .transact_decision(&cells, cmd.fence, |states| {
                    let d = rules::decide_hold(&cmd, &sale, &seats, states, owned)?;
                    let next = d.seats.clone();
                    Ok((d, next))
                })?;
            let reservation = d.reservation;
            book.reservations
                .insert(reservation.id, reservation.clone());
            write(&self.inner.owners).insert(reservation.id, cmd.user_id);
            let key = book.remember(
                cmd.idempotency.clone(),
                StoredOutcome::Hold(reservation.clone()),
            );
            self.log_key(cmd.now, cmd.user_id, key);
            self.emit(cmd.now, d.event);
            drop(catalog);
            Ok(reservation)
        })
    }

    async fn pay(&self, cmd: PayCommand) -> Result<Payment> {
        let owner = self.owner(cmd.reservation_id)?;
        if owner != cmd.user_id {
            return Err(Error::Forbidden);
        }
        // As in `hold`: the catalog first, kept until the payment is stored.
        let catalog = read(&self.inner.catalog);
        let book = self.book(owner);
        let mut book = lock(&book);
        if let Some(outcome) = book.replay(cmd.idempotency.as_ref())? {
            return outcome.into_payment();
        }
        let reservation = book
            .reservations
            .get(&cmd.reservation_id)
            .cloned()
            .ok_or_else(|| Error::not_found("reservation", cmd.reservation_id))?;
        // Refusals that need no seat come first.
        rules::transition(&reservation, Action::Pay, cmd.now)?;
        rules::check_no_charge_in_flight(&book.attempts_of(reservation.id), Action::Pay)?;
        let sale = sale_window(&catalog, reservation.option_id)?;
        let (balance, payment_id) = (book.balance, PaymentId::new());
        let cells = self.inner.seats.cells(&reservation.seat_ids)?;
        let d = self
            .inner
            .seats
            .transact_decision(&cells, cmd.fence, |states| {
                let d = rules::decide_pay(&cmd, &sale, &reservation, balance, states, payment_id)?;
                let next = d.seats.clone();
                Ok((d, next))
            })?;
        book.balance = d.payment.balance;
        book.reservations
            .insert(d.reservation.id, d.reservation.clone());
        let key = book.remember(cmd.idempotency, StoredOutcome::Payment(d.payment.clone()));
        self.log_key(cmd.now, cmd.user_id, key);
        self.emit(cmd.now, d.event);
        drop(catalog);
        Ok(d.payment)
    }

    async fn cancel(&self, cmd: CancelCommand) -> Result<Reservation> {
        let owner = self.owner(cmd.reservation_id)?;
        if owner != cmd.user_id {
            return Err(Error::Forbidden);
        }
        let catalog = read(&self.inner.catalog);
        let book = self.book(owner);
        let mut book = lock(&book);
        let reservation = book
            .reservations
            .get(&cmd.reservation_id)
            .cloned()
            .ok_or_else(|| Error::not_found("reservation", cmd.reservation_id))?;
        if let Some(outcome) = book.replay(cmd.idempotency.as_ref())? {
            return outcome.into_cancel();
        }
        rules::transition(&reservation, Action::Cancel, cmd.now)?;
        let attempts = book.attempts_of(reservation.id);
        rules::check_no_charge_in_flight(&attempts, Action::Cancel)?;
        let sale = sale_window(&catalog, reservation.option_id)?;
        let balance = book.balance;
        let cells = self.inner.seats.cells(&reservation.seat_ids)?;
        // Paid through a provider: the money goes back through it, not to the wallet; decided
        // with the seats, so nothing is written unless all of it is.
        let charge = rules::charge_to_refund(&attempts, &reservation);
        // Negative control: a provider-paid reservation refunded to the wallet, as if paid with
        // points (the provider keeps the money, the buyer gets points): the saga tests must fail.
        #[cfg(ticketing_control = "provider_cancel_to_points")]
        let charge: Option<&ticketing_core::provider::PaymentAttempt> = charge.and(None);
        let refund_id = AttemptId::new();
        let (d, refund) = self
            .inner
            .seats
            .transact_decision(&cells, cmd.fence, |states| {
                let decided = rules::decide_cancel_refunding(
                    &cmd,
                    &sale,
                    &reservation,
                    balance,
                    states,
                    charge,
                    refund_id,
                )?;
                let next = decided.0.seats.clone();
                Ok((decided, next))
            })?;
        book.balance = d.balance;
        book.reservations
            .insert(d.reservation.id, d.reservation.clone());
        let key = book.remember(
            cmd.idempotency,
            StoredOutcome::Cancel(d.reservation.clone()),
        );
        self.log_key(cmd.now, cmd.user_id, key);
        self.emit(cmd.now, d.event);
        if let Some((refund, event)) = refund {
            self.note_attempt(&refund);
            book.attempts.push(refund);
            self.emit(cmd.now, event);
        }
        drop(catalog);
        Ok(d.reservation)
    }

    async fn expire_due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<ReservationId>> {
        let books: Vec<_> = read(&self.inner.users).values().cloned().collect();
        let mut expired = Vec::new();
        for book in books {
            if expired.len() >= limit {
                break;
            }
            let mut book = lock(&book);
            let due: Vec<Reservation> = book
                .reservations
                .values()
                .filter(|r| rules::transition(r, Action::Expire, now).is_ok())
                .take(limit - expired.len())
                .cloned()
                .collect();
            for reservation in due {
                let transition = rules::transition(&reservation, Action::Expire, now)?;
                self.release(&reservation, None)?;
                expired.push(reservation.id);
                self.emit(
                    now,
                    EventKind::HoldExpired {
                        reservation_id: reservation.id,
                    },
                );
                book.reservations.insert(
                    reservation.id,
                    Reservation {
                        status: transition.to,
                        ..reservation
                    },
                );
            }
        }
        Ok(expired)
    }

    async fn reservation(&self, id: ReservationId, now: DateTime<Utc>) -> Result<Reservation> {
        let book = self.book(self.owner(id)?);
        let book = lock(&book);
        book.reservations
            .get(&id)
            .map(|r| rules::effective(r, now))
            .ok_or_else(|| Error::not_found("reservation", id))
    }

    async fn user_reservations(
        &self,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<Reservation>> {
        let Some(book) = self.existing_book(user) else {
            return Ok(Vec::new());
        };
        let book = lock(&book);
        // Ids are UUID v7, so reverse id order is newest first.
        Ok(book
            .reservations
            .values()
            .rev()
            .map(|r| rules::effective(r, now))
            .collect())
    }

    async fn charge(&self, cmd: ChargeCommand) -> Result<Balance> {
        if !cmd.amount.is_positive() {
            return Err(Error::invalid("amount must be positive"));
        }
        self.with_book(cmd.user_id, |book| {
            if let Some(outcome) = book.replay(cmd.idempotency.as_ref())? {
                return outcome.into_charge();
            }
            let d = rules::decide_charge(&cmd, book.balance)?;
            book.balance = d.balance.balance;
            let balance = d.balance;
            self.emit(cmd.now, rules::ChargeDecision::event(&cmd));
            let key = book.remember(cmd.idempotency.clone(), StoredOutcome::Charge(balance));
            self.log_key(cmd.now, cmd.user_id, key);
            Ok(balance)
        })
    }

    async fn balance(&self, user: UserId) -> Result<Points> {
        Ok(self
            .existing_book(user)
            .map(|b| lock(&b).balance)
            .unwrap_or_default())
    }

    async fn idempotency_record(
        &self,
        user: UserId,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>> {
        Ok(self
            .existing_book(user)
            .and_then(|b| lock(&b).idempotency.get(key).cloned()))
    }

    async fn outbox_read(&self, after: u64, limit: usize) -> Result<Vec<OutboxRecord>> {
        let outbox = lock(&self.inner.outbox);
        Ok(outbox
            .pending
            .range(after.saturating_add(1)..)
            .take(limit)
            .map(|(_, r)| r.clone())
            .collect())
    }

    async fn outbox_ack(&self, seqs: &[u64]) -> Result<()> {
        let mut outbox = lock(&self.inner.outbox);
        for seq in seqs {
            outbox.pending.remove(seq);
        }
        Ok(())
    }

    async fn prune(&self, before: DateTime<Utc>, limit: usize) -> Result<u64> {
        // Acknowledged outbox events are dropped at once; idempotency records are kept until
        // their time passes, then forgotten oldest first.
        let due: Vec<(DateTime<Utc>, UserId, String)> = {
            let mut log = lock(&self.inner.idempotency_log);
            let mut due = Vec::new();
            while due.len() < limit {
                match log.front() {
                    Some((at, _, _)) if *at < before => due.extend(log.pop_front()),
                    _ => break,
                }
            }
            due
        };
        let mut forgotten = 0;
        for (_, user, key) in due {
            let Some(book) = self.existing_book(user) else {
                continue;
            };
            let mut book = lock(&book);
            if book.idempotency.remove(&key).is_some() {
                forgotten += 1;
            }
            self.retire_if_empty(user, &mut book);
        }
        Ok(forgotten)
    }

    async fn health(&self) -> Result<()> {
        Ok(())
    }

    async fn begin_provider_payment(&self, cmd: BeginPaymentCommand) -> Result<PaymentAttempt> {
        self.begin_provider(cmd)
    }

    async fn settle_charge(&self, cmd: SettleChargeCommand) -> Result<ChargeSettled> {
        self.settle_provider_charge(cmd)
    }

    async fn settle_refund(&self, cmd: SettleRefundCommand) -> Result<PaymentAttempt> {
        self.settle_provider_refund(cmd)
    }

    async fn payment_attempt(&self, id: AttemptId) -> Result<PaymentAttempt> {
        self.provider_attempt(id)
    }

    async fn reservation_attempts(&self, id: ReservationId) -> Result<Vec<PaymentAttempt>> {
        let Ok(owner) = self.owner(id) else {
            return Ok(Vec::new());
        };
        Ok(self
            .existing_book(owner)
            .map(|book| lock(&book).attempts_of(id))
            .unwrap_or_default())
    }

    async fn pending_attempts(&self, limit: usize) -> Result<Vec<PaymentAttempt>> {
        Ok(self.pending_provider_attempts(limit))
    }
}

#[cfg(all(test, not(loom), feature = "optimistic"))]
mod tests {
    use super::*;
    use ticketing_core::testkit::{Harness, TestBackend};

    fn users(store: &MemoryStore) -> usize {
        read(&store.inner.users).len()
    }

    /// A rush of refused buyers (the seat is taken) must not leave a record per buyer behind.
    #[tokio::test]
    async fn refused_holds_of_new_users_leave_nothing_behind() {
        let store = MemoryStore::optimistic();
        let h = Harness::new(TestBackend::new(
            store.clone(),
            crate::MemoryQueue::new(Default::default()),
        ))
        .await;
        h.charge(h.user(0), Points(1_000)).await;
        h.hold(h.user(0), &[h.seats[0]])
            .await
            .expect("the first hold");
        let before = users(&store);
        for i in 1..=50 {
            let refused = h.hold(h.user(i), &[h.seats[0]]).await;
            assert_eq!(
                refused.map_err(|e| e.code()).err(),
                Some(ticketing_core::ErrorCode::SeatUnavailable)
            );
        }
        assert_eq!(users(&store), before, "no record for a refused new user");
        // A user who got something keeps their record.
        h.hold(h.user(1), &[h.seats[1]])
            .await
            .expect("a later hold");
        assert_eq!(users(&store), before + 1);
    }

    /// The recovery job's index follows the attempts: pending while the provider's answer is
    /// unknown, gone once settled; the sizes count both.
    #[tokio::test]
    async fn pending_attempts_are_indexed_until_settled() {
        use ticketing_core::provider::{BeginPaymentCommand, ChargeOutcome, SettleChargeCommand};
        let store = MemoryStore::optimistic();
        let h = Harness::new(TestBackend::store_only(store.clone())).await;
        let u = h.user(0);
        let r = h.hold(u, &[h.seats[0]]).await.expect("hold");
        let a = store
            .begin_provider_payment(BeginPaymentCommand {
                reservation_id: r.id,
                user_id: u,
                now: h.now(),
                bound: chrono::Duration::minutes(2),
                attempt_id: AttemptId::new(),
                idempotency: None,
            })
            .await
            .expect("begin");
        let sizes = store.sizes();
        assert_eq!(
            (sizes.payment_attempts, sizes.payment_attempts_pending),
            (1, 1)
        );
        assert_eq!(
            store.pending_attempts(10).await.expect("pending"),
            vec![a.clone()]
        );
        store
            .settle_charge(SettleChargeCommand {
                attempt_id: a.id,
                outcome: ChargeOutcome::Captured {
                    reference: "ch".into(),
                },
                now: h.now(),
                payment_id: ticketing_core::PaymentId::new(),
                refund_id: AttemptId::new(),
            })
            .await
            .expect("settle");
        let sizes = store.sizes();
        assert_eq!(
            (sizes.payment_attempts, sizes.payment_attempts_pending),
            (1, 0)
        );
        assert!(
            store
                .pending_attempts(10)
                .await
                .expect("pending")
                .is_empty()
        );
    }
}
