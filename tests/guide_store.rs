//! The store of `docs/implementing-a-backend.md`, whole: every method of [`TicketStore`] over
//! one mutex-guarded state, each write following the protocol of the guide (replay the key →
//! load → `rules` decides → write → event → remember, in one atomic step), and the whole
//! store suite, the model test and the fencing check run on it. It is the smallest correct store: one lock makes
//! every command atomic, and every decision is `ticketing::rules`'s.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use ticketing::rules::{self, Action};
use ticketing::{
    Balance, CancelCommand, Catalog, ChargeCommand, Concert, ConcertId, DomainEvent, Error,
    EventKind, FencingToken, HoldCommand, IdempotencyKey, IdempotencyRecord, OptionId,
    OptionSummary, OutboxRecord, PayCommand, Payment, PaymentId, Points, Reservation,
    ReservationId, Result, SaleWindow, Seat, SeatId, SeatState, SeatView, ShowOption,
    StoredOutcome, TicketStore, UserId, async_trait,
};

/// A seat as stored: the seat, its state, and the newest fencing token a write carried.
#[derive(Debug, Clone)]
struct StoredSeat {
    seat: Seat,
    state: SeatState,
    fence: Option<FencingToken>,
}

#[derive(Debug, Default)]
struct State {
    concerts: BTreeMap<ConcertId, Concert>,
    options: BTreeMap<OptionId, ShowOption>,
    seats: BTreeMap<SeatId, StoredSeat>,
    reservations: BTreeMap<ReservationId, Reservation>,
    wallets: HashMap<UserId, Points>,
    /// Idempotency records, with the instant each was made (for `prune`).
    keys: HashMap<(UserId, String), (IdempotencyRecord, DateTime<Utc>)>,
    /// Events not yet acknowledged, by `seq`.
    outbox: BTreeMap<u64, OutboxRecord>,
    next_seq: u64,
}

/// Everything in one mutex: each method is one atomic step.
#[derive(Debug, Default)]
pub struct GuideStore {
    state: Mutex<State>,
}

impl GuideStore {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while the lock was held left nothing half-written worth refusing to read:
        // every write below is applied only after every check passed.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl State {
    /// Step 1 of every keyed write: the stored outcome of a retry (or `idempotency_conflict`).
    fn replay(&self, key: Option<&IdempotencyKey>) -> Result<Option<StoredOutcome>> {
        let Some(key) = key else { return Ok(None) };
        match self.keys.get(&(key.user_id, key.key.clone())) {
            Some((record, _)) => record.replay(&key.fingerprint).map(Some),
            None => Ok(None),
        }
    }

    /// The last step: keep the outcome under the key, in the same atomic step as the change.
    fn remember(
        &mut self,
        key: Option<&IdempotencyKey>,
        outcome: StoredOutcome,
        at: DateTime<Utc>,
    ) {
        if let Some(key) = key {
            let record = IdempotencyRecord {
                fingerprint: key.fingerprint.clone(),
                outcome,
            };
            self.keys
                .insert((key.user_id, key.key.clone()), (record, at));
        }
    }

    /// Append an event; `seq` only ever grows.
    fn emit(&mut self, at: DateTime<Utc>, kind: EventKind) {
        self.next_seq += 1;
        let seq = self.next_seq;
        let event = DomainEvent::new(at, kind);
        self.outbox.insert(seq, OutboxRecord { seq, event });
    }

    fn window(&self, option: OptionId) -> Result<SaleWindow> {
        self.options
            .get(&option)
            .map(ShowOption::sale_window)
            .ok_or_else(|| Error::not_found("option", option))
    }

    /// The seats named, in the order given; `not_found` for an unknown one; `lock_lost` when
    /// one has accepted a newer fencing token than `fence`.
    fn seats(&self, ids: &[SeatId], fence: Option<FencingToken>) -> Result<Vec<StoredSeat>> {
        let seats = ids
            .iter()
            .map(|id| {
                self.seats
                    .get(id)
                    .cloned()
                    .ok_or_else(|| Error::not_found("seat", id))
            })
            .collect::<Result<Vec<_>>>()?;
        if !seats.iter().all(|s| rules::fence_allows(s.fence, fence)) {
            return Err(Error::LockLost);
        }
        Ok(seats)
    }

    /// Store the seats' next states (decided by `rules`), noting the fencing token.
    fn write_seats(&mut self, ids: &[SeatId], next: &[SeatState], fence: Option<FencingToken>) {
        for (id, state) in ids.iter().zip(next) {
            if let Some(stored) = self.seats.get_mut(id) {
                stored.state = *state;
                stored.fence = stored.fence.max(fence);
            }
        }
    }

    fn reservation(&self, id: ReservationId, user: UserId) -> Result<Reservation> {
        let r = self
            .reservations
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found("reservation", id))?;
        if r.user_id != user {
            return Err(Error::Forbidden);
        }
        Ok(r)
    }

    /// What a payment or cancel of `r` decides on: its option's window, its seats' states (in
    /// its order) and its owner's balance.
    fn load_for(
        &self,
        r: &Reservation,
        fence: Option<FencingToken>,
    ) -> Result<(SaleWindow, Vec<SeatState>, Points)> {
        let window = self.window(r.option_id)?;
        let seats = self.seats(&r.seat_ids, fence)?;
        let states = seats.iter().map(|s| s.state).collect();
        Ok((window, states, self.balance(r.user_id)))
    }

    fn balance(&self, user: UserId) -> Points {
        self.wallets.get(&user).copied().unwrap_or_default()
    }
}

#[async_trait]
impl TicketStore for GuideStore {
    async fn seed(&self, catalog: &Catalog) -> Result<()> {
        let mut st = self.state();
        // All or none: every check before any insert.
        rules::validate_catalog(
            catalog,
            |c| st.concerts.contains_key(&c),
            |o| st.options.contains_key(&o),
            |s| st.seats.contains_key(&s),
        )?;
        for c in &catalog.concerts {
            st.concerts.insert(c.id, c.clone());
        }
        for o in &catalog.options {
            st.options.insert(o.id, o.clone());
        }
        for s in &catalog.seats {
            let stored = StoredSeat {
                seat: s.clone(),
                state: SeatState::Available,
                fence: None,
            };
            st.seats.insert(s.id, stored);
        }
        Ok(())
    }

    async fn concerts(&self) -> Result<Vec<Concert>> {
        Ok(self.state().concerts.values().cloned().collect())
    }

    async fn concert(&self, concert: ConcertId) -> Result<Concert> {
        self.state()
            .concerts
            .get(&concert)
            .cloned()
            .ok_or_else(|| Error::not_found("concert", concert))
    }

    async fn options(&self, concert: ConcertId, now: DateTime<Utc>) -> Result<Vec<OptionSummary>> {
        let st = self.state();
        if !st.concerts.contains_key(&concert) {
            return Err(Error::not_found("concert", concert));
        }
        Ok(st
            .options
            .values()
            .filter(|o| o.concert_id == concert)
            .map(|o| {
                let seats = st.seats.values().filter(|s| s.seat.option_id == o.id);
                let (mut total, mut available) = (0, 0);
                for s in seats {
                    total += 1;
                    if rules::effective_seat_state(s.state, now) == SeatState::Available {
                        available += 1;
                    }
                }
                OptionSummary {
                    option: o.clone(),
                    total_seats: total,
                    available_seats: available,
                }
            })
            .collect())
    }

    async fn option(&self, option: OptionId) -> Result<ShowOption> {
        self.state()
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
        let mut st = self.state();
        let stored = st
            .options
            .get(&option)
            .ok_or_else(|| Error::not_found("option", option))?;
        let next = rules::with_sale_window(stored, opens_at, closes_at)?;
        st.options.insert(option, next.clone());
        Ok(next)
    }

    async fn seats(&self, option: OptionId, now: DateTime<Utc>) -> Result<Vec<SeatView>> {
        let st = self.state();
        if !st.options.contains_key(&option) {
            return Err(Error::not_found("option", option));
        }
        Ok(st
            .seats
            .values()
            .filter(|s| s.seat.option_id == option)
            .map(|s| SeatView {
                seat: s.seat.clone(),
                status: rules::effective_seat_state(s.state, now).status(),
            })
            .collect())
    }

    async fn hold(&self, cmd: HoldCommand) -> Result<Reservation> {
        let mut st = self.state();
        // 1. A retry under a used key gets its first outcome.
        if let Some(outcome) = st.replay(cmd.idempotency.as_ref())? {
            return outcome.into_hold();
        }
        // 2. Load what the decision needs: the option's window, the seats, the user's seats.
        let window = st.window(cmd.option_id)?;
        let stored = st.seats(&cmd.seat_ids, cmd.fence)?;
        let owned = rules::seats_owned(
            st.reservations
                .values()
                .filter(|r| r.user_id == cmd.user_id),
            cmd.option_id,
            cmd.now,
        );
        // 3. `rules` decides.
        let seats: Vec<&Seat> = stored.iter().map(|s| &s.seat).collect();
        let states: Vec<SeatState> = stored.iter().map(|s| s.state).collect();
        let d = rules::decide_hold(&cmd, &window, &seats, &states, owned)?;
        // 4. Write what it decided, 5. its event, 6. the outcome under the key.
        st.write_seats(&cmd.seat_ids, &d.seats, cmd.fence);
        st.reservations
            .insert(d.reservation.id, d.reservation.clone());
        st.emit(cmd.now, d.event);
        let outcome = StoredOutcome::Hold(d.reservation.clone());
        st.remember(cmd.idempotency.as_ref(), outcome, cmd.now);
        Ok(d.reservation)
    }

    async fn pay(&self, cmd: PayCommand) -> Result<Payment> {
        let mut st = self.state();
        let reservation = st.reservation(cmd.reservation_id, cmd.user_id)?;
        if let Some(outcome) = st.replay(cmd.idempotency.as_ref())? {
            return outcome.into_payment();
        }
        let (window, states, balance) = st.load_for(&reservation, cmd.fence)?;
        let d = rules::decide_pay(
            &cmd,
            &window,
            &reservation,
            balance,
            &states,
            PaymentId::new(),
        )?;
        st.write_seats(&reservation.seat_ids, &d.seats, cmd.fence);
        st.wallets.insert(cmd.user_id, d.payment.balance);
        st.reservations.insert(d.reservation.id, d.reservation);
        st.emit(cmd.now, d.event);
        let outcome = StoredOutcome::Payment(d.payment.clone());
        st.remember(cmd.idempotency.as_ref(), outcome, cmd.now);
        Ok(d.payment)
    }

    async fn cancel(&self, cmd: CancelCommand) -> Result<Reservation> {
        let mut st = self.state();
        let reservation = st.reservation(cmd.reservation_id, cmd.user_id)?;
        if let Some(outcome) = st.replay(cmd.idempotency.as_ref())? {
            return outcome.into_cancel();
        }
        let (window, states, balance) = st.load_for(&reservation, cmd.fence)?;
        let d = rules::decide_cancel(&cmd, &window, &reservation, balance, &states)?;
        st.write_seats(&reservation.seat_ids, &d.seats, cmd.fence);
        st.wallets.insert(cmd.user_id, d.balance);
        st.reservations
            .insert(d.reservation.id, d.reservation.clone());
        st.emit(cmd.now, d.event);
        let outcome = StoredOutcome::Cancel(d.reservation.clone());
        st.remember(cmd.idempotency.as_ref(), outcome, cmd.now);
        Ok(d.reservation)
    }

    async fn expire_due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<ReservationId>> {
        let mut st = self.state();
        let due: Vec<Reservation> = st
            .reservations
            .values()
            .filter(|r| rules::transition(r, Action::Expire, now).is_ok())
            .take(limit)
            .cloned()
            .collect();
        let mut expired = Vec::with_capacity(due.len());
        for r in due {
            let t = rules::transition(&r, Action::Expire, now)?;
            for id in &r.seat_ids {
                if let Some(seat) = st.seats.get_mut(id) {
                    seat.state = rules::release_seat(seat.state, r.id);
                }
            }
            st.emit(
                now,
                EventKind::HoldExpired {
                    reservation_id: r.id,
                },
            );
            expired.push(r.id);
            st.reservations
                .insert(r.id, Reservation { status: t.to, ..r });
        }
        Ok(expired)
    }

    async fn reservation(&self, id: ReservationId, now: DateTime<Utc>) -> Result<Reservation> {
        self.state()
            .reservations
            .get(&id)
            .map(|r| rules::effective(r, now))
            .ok_or_else(|| Error::not_found("reservation", id))
    }

    async fn user_reservations(
        &self,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<Reservation>> {
        // Reservation ids are UUID v7: reverse id order is newest first.
        Ok(self
            .state()
            .reservations
            .values()
            .rev()
            .filter(|r| r.user_id == user)
            .map(|r| rules::effective(r, now))
            .collect())
    }

    async fn charge(&self, cmd: ChargeCommand) -> Result<Balance> {
        let mut st = self.state();
        if let Some(outcome) = st.replay(cmd.idempotency.as_ref())? {
            return outcome.into_charge();
        }
        let d = rules::decide_charge(&cmd, st.balance(cmd.user_id))?;
        st.wallets.insert(cmd.user_id, d.balance.balance);
        st.emit(cmd.now, rules::ChargeDecision::event(&cmd));
        st.remember(
            cmd.idempotency.as_ref(),
            StoredOutcome::Charge(d.balance),
            cmd.now,
        );
        Ok(d.balance)
    }

    async fn balance(&self, user: UserId) -> Result<Points> {
        Ok(self.state().balance(user))
    }

    async fn idempotency_record(
        &self,
        user: UserId,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>> {
        let st = self.state();
        Ok(st.keys.get(&(user, key.to_owned())).map(|(r, _)| r.clone()))
    }

    async fn outbox_read(&self, after: u64, limit: usize) -> Result<Vec<OutboxRecord>> {
        let st = self.state();
        Ok(st
            .outbox
            .range(after.saturating_add(1)..)
            .take(limit)
            .map(|(_, r)| r.clone())
            .collect())
    }

    async fn outbox_ack(&self, seqs: &[u64]) -> Result<()> {
        // Exactly these, never a range; an acknowledged event is dropped at once (nothing
        // reads it again), so `prune` has none left to forget.
        let mut st = self.state();
        for seq in seqs {
            st.outbox.remove(seq);
        }
        Ok(())
    }

    async fn prune(&self, before: DateTime<Utc>, limit: usize) -> Result<u64> {
        let mut st = self.state();
        let old: Vec<(UserId, String)> = st
            .keys
            .iter()
            .filter(|(_, (_, at))| *at < before)
            .map(|(k, _)| k.clone())
            .take(limit)
            .collect();
        for k in &old {
            st.keys.remove(k);
        }
        Ok(old.len() as u64)
    }

    async fn health(&self) -> Result<()> {
        Ok(())
    }
}

async fn backend() -> Option<ticketing_core::testkit::TestBackend> {
    Some(ticketing_core::testkit::TestBackend::store_only(
        GuideStore::default(),
    ))
}

ticketing_core::store_suite!(backend);
ticketing_core::fencing_conformance!(backend);
