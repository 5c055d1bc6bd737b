//! The in-memory [`TicketStore`].

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use ticketing_core::{
    Balance, CancelCommand, Catalog, ChargeCommand, Concert, ConcertId, ConfirmCommand,
    DomainEvent, Error, EventKind, FencingToken, HoldCommand, IdempotencyKey, IdempotencyRecord,
    OptionId, OptionSummary, OutboxRecord, Payment, PaymentId, Points, Reservation, ReservationId,
    Result, Seat, SeatId, SeatState, SeatView, ShowOption, StoredOutcome, TicketStore, UserId,
    async_trait,
    rules::{self, Action},
};

use crate::seat_table::{SeatCell, SeatTable, Strategy};
use crate::sync::{Arc, Mutex, RwLock, lock, read, write};

#[derive(Debug, Default)]
struct CatalogState {
    concerts: BTreeMap<ConcertId, Concert>,
    options: BTreeMap<OptionId, ShowOption>,
    option_seats: HashMap<OptionId, Vec<SeatId>>,
}

/// One user's wallet, reservations and idempotency records, changed under one lock.
#[derive(Debug, Default)]
struct UserBook {
    balance: Points,
    reservations: Reservations,
    idempotency: HashMap<String, IdempotencyRecord>,
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
    fn replay(&self, key: Option<&IdempotencyKey>) -> Result<Option<StoredOutcome>> {
        match key.and_then(|k| self.idempotency.get(&k.key).map(|r| (k, r))) {
            Some((k, record)) => record.replay(&k.fingerprint).map(Some),
            None => Ok(None),
        }
    }

    fn remember(&mut self, key: Option<IdempotencyKey>, outcome: StoredOutcome) {
        if let Some(k) = key {
            self.idempotency.insert(
                k.key,
                IdempotencyRecord {
                    fingerprint: k.fingerprint,
                    outcome,
                },
            );
        }
    }
}

#[derive(Debug, Default)]
struct Outbox {
    next_seq: u64,
    pending: BTreeMap<u64, OutboxRecord>,
}

/// The embedded store: everything in process memory, nothing survives a restart.
///
/// Seat writes are guarded by the [`Strategy`] chosen at construction; a user's wallet,
/// reservations and idempotency records change under that user's lock, taken before any seat
/// lock, so no two operations can wait on each other in a cycle.
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
    outbox: Mutex<Outbox>,
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
                outbox: Mutex::new(Outbox::default()),
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

    fn validate_catalog(&self, catalog: &Catalog, state: &CatalogState) -> Result<()> {
        let mut concerts = HashSet::new();
        for c in &catalog.concerts {
            if c.id.0 <= 0 || state.concerts.contains_key(&c.id) || !concerts.insert(c.id) {
                return Err(Error::invalid(format!(
                    "concert id {} is invalid or taken",
                    c.id
                )));
            }
        }
        let mut options = HashSet::new();
        for o in &catalog.options {
            if o.id.0 <= 0 || state.options.contains_key(&o.id) || !options.insert(o.id) {
                return Err(Error::invalid(format!(
                    "option id {} is invalid or taken",
                    o.id
                )));
            }
            if !concerts.contains(&o.concert_id) && !state.concerts.contains_key(&o.concert_id) {
                return Err(Error::invalid(format!(
                    "option {} names unknown concert",
                    o.id
                )));
            }
        }
        let mut seats = HashSet::new();
        for s in &catalog.seats {
            if s.id.0 <= 0 || !seats.insert(s.id) || s.price.0 < 0 {
                return Err(Error::invalid(format!("seat {} is invalid", s.id)));
            }
            if !options.contains(&s.option_id) && !state.options.contains_key(&s.option_id) {
                return Err(Error::invalid(format!(
                    "seat {} names unknown option",
                    s.id
                )));
            }
        }
        Ok(())
    }
}

#[async_trait]
impl TicketStore for MemoryStore {
    async fn seed(&self, catalog: &Catalog) -> Result<()> {
        let mut state = write(&self.inner.catalog);
        self.validate_catalog(catalog, &state)?;
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
        self.option(cmd.option_id).await?;
        let cells = self.inner.seats.cells(&cmd.seat_ids)?;
        let book = self.book(cmd.user_id);
        let mut book = lock(&book);
        if let Some(outcome) = book.replay(cmd.idempotency.as_ref())? {
            return outcome.into_hold();
        }
        let owned = rules::seats_owned(book.reservations.values(), cmd.option_id, cmd.now);
        let seats: Vec<&Seat> = cells.iter().map(|c| c.seat()).collect();
        let d = self
            .inner
            .seats
            .transact_decision(&cells, cmd.fence, |states| {
                let d = rules::decide_hold(&cmd, &seats, states, owned)?;
                let next = d.seats.clone();
                Ok((d, next))
            })?;
        let reservation = d.reservation;
        book.reservations
            .insert(reservation.id, reservation.clone());
        write(&self.inner.owners).insert(reservation.id, cmd.user_id);
        book.remember(cmd.idempotency, StoredOutcome::Hold(reservation.clone()));
        self.emit(cmd.now, d.event);
        Ok(reservation)
    }

    async fn confirm(&self, cmd: ConfirmCommand) -> Result<Payment> {
        let owner = self.owner(cmd.reservation_id)?;
        if owner != cmd.user_id {
            return Err(Error::Forbidden);
        }
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
        rules::transition(&reservation, Action::Confirm, cmd.now)?;
        let (balance, payment_id) = (book.balance, PaymentId::new());
        let cells = self.inner.seats.cells(&reservation.seat_ids)?;
        let d = self
            .inner
            .seats
            .transact_decision(&cells, cmd.fence, |states| {
                let d = rules::decide_confirm(&cmd, &reservation, balance, states, payment_id)?;
                let next = d.seats.clone();
                Ok((d, next))
            })?;
        book.balance = d.payment.balance;
        book.reservations
            .insert(d.reservation.id, d.reservation.clone());
        book.remember(cmd.idempotency, StoredOutcome::Payment(d.payment.clone()));
        self.emit(cmd.now, d.event);
        Ok(d.payment)
    }

    async fn cancel(&self, cmd: CancelCommand) -> Result<Reservation> {
        let owner = self.owner(cmd.reservation_id)?;
        if owner != cmd.user_id {
            return Err(Error::Forbidden);
        }
        let book = self.book(owner);
        let mut book = lock(&book);
        let reservation = book
            .reservations
            .get(&cmd.reservation_id)
            .cloned()
            .ok_or_else(|| Error::not_found("reservation", cmd.reservation_id))?;
        rules::transition(&reservation, Action::Cancel, cmd.now)?;
        let balance = book.balance;
        let cells = self.inner.seats.cells(&reservation.seat_ids)?;
        let d = self
            .inner
            .seats
            .transact_decision(&cells, cmd.fence, |states| {
                let d = rules::decide_cancel(&cmd, &reservation, balance, states)?;
                let next = d.seats.clone();
                Ok((d, next))
            })?;
        book.balance = d.balance;
        book.reservations
            .insert(d.reservation.id, d.reservation.clone());
        self.emit(cmd.now, d.event);
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
        let book = self.book(cmd.user_id);
        let mut book = lock(&book);
        if let Some(outcome) = book.replay(cmd.idempotency.as_ref())? {
            return outcome.into_charge();
        }
        let d = rules::decide_charge(&cmd, book.balance)?;
        book.balance = d.balance.balance;
        let balance = d.balance;
        self.emit(cmd.now, rules::ChargeDecision::event(&cmd));
        book.remember(cmd.idempotency, StoredOutcome::Charge(balance));
        Ok(balance)
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

    async fn health(&self) -> Result<()> {
        Ok(())
    }
}
