//! The seats and the two ways of guarding them: per-seat locks taken in ascending id order
//! (pessimistic) or versioned compare-and-set with bounded retry (optimistic).

use std::collections::HashMap;

use ticketing_core::{Error, FencingToken, Seat, SeatId, SeatState, rules};

use crate::sync::{Arc, Mutex, RwLock, lock, read, write};

/// How seat writes are guarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Strategy {
    /// Lock every seat of the write, in ascending id order (so two writers can never wait on
    /// each other in a cycle), check, write, unlock.
    #[cfg(feature = "pessimistic")]
    Pessimistic,
    /// Read each seat's version without holding any lock and decide; then lock the seats in
    /// ascending order, compare every version with the one read and write all or none; if one
    /// changed meanwhile, read again, at most `max_retries` more times. No tentative write is
    /// ever visible.
    #[cfg(feature = "optimistic")]
    Optimistic {
        /// Attempts after the first before giving up with a retryable error.
        max_retries: u32,
    },
}

#[derive(Debug, Clone, Copy)]
struct Versioned {
    version: u64,
    state: SeatState,
    /// The highest fencing token a write to this seat has carried.
    fence: Option<FencingToken>,
}

/// One seat: its immutable description and its guarded state.
#[derive(Debug)]
pub struct SeatCell {
    seat: Seat,
    slot: Mutex<Versioned>,
}

impl SeatCell {
    fn new(seat: Seat) -> Self {
        Self {
            seat,
            slot: Mutex::new(Versioned {
                version: 0,
                state: SeatState::Available,
                fence: None,
            }),
        }
    }

    /// The seat's description.
    pub fn seat(&self) -> &Seat {
        &self.seat
    }

    /// The stored state (not yet made effective at any instant).
    pub fn state(&self) -> SeatState {
        lock(&self.slot).state
    }
}

/// All seats, by id.
#[derive(Debug)]
pub struct SeatTable {
    strategy: Strategy,
    cells: RwLock<HashMap<SeatId, Arc<SeatCell>>>,
}

impl SeatTable {
    /// An empty table guarded by `strategy`.
    pub fn new(strategy: Strategy) -> Self {
        Self {
            strategy,
            cells: RwLock::new(HashMap::new()),
        }
    }

    /// The strategy.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// Add seats; `false` (and nothing added) if any id is already present.
    pub fn insert(&self, seats: &[Seat]) -> bool {
        let mut cells = write(&self.cells);
        if seats.iter().any(|s| cells.contains_key(&s.id)) {
            return false;
        }
        for seat in seats {
            cells.insert(seat.id, Arc::new(SeatCell::new(seat.clone())));
        }
        true
    }

    /// The cells of `ids`, in the order given; `not_found` names the first unknown id.
    pub fn cells(&self, ids: &[SeatId]) -> Result<Vec<Arc<SeatCell>>, Error> {
        let cells = read(&self.cells);
        ids.iter()
            .map(|id| {
                cells
                    .get(id)
                    .cloned()
                    .ok_or_else(|| Error::not_found("seat", id))
            })
            .collect()
    }

    /// Apply `decide` to the states of `cells` (in the order given) and store
    /// the states it returns, for all cells or none. A `fence` older than one a seat already
    /// accepted is `lock_lost`. `decide` may be called more than once (optimistic retries) and
    /// must be a pure function of the states it is given.
    pub fn transact<F>(
        &self,
        cells: &[Arc<SeatCell>],
        fence: Option<FencingToken>,
        decide: F,
    ) -> Result<(), Error>
    where
        F: Fn(&[SeatState]) -> Result<Vec<SeatState>, Error>,
    {
        // Work on the seats in ascending id order whatever order the caller gave: locks are
        // then always taken in one global order (no deadlock), and compare-and-set writers
        // meet on their lowest common seat first (no livelock between two of them).
        let mut order: Vec<usize> = (0..cells.len()).collect();
        order.sort_by_key(|&i| cells[i].seat.id);
        let sorted: Vec<Arc<SeatCell>> = order.iter().map(|&i| cells[i].clone()).collect();
        // A seat named twice would be locked twice by this thread.
        if sorted.windows(2).any(|w| w[0].seat.id == w[1].seat.id) {
            return Err(Error::invalid("a seat is named twice"));
        }
        let decide_sorted = |states: &[SeatState]| {
            let mut given = vec![SeatState::Available; states.len()];
            for (state, &i) in states.iter().zip(&order) {
                given[i] = *state;
            }
            let next = decide(&given)?;
            order
                .iter()
                .map(|&i| next.get(i).copied())
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| Error::invalid("a seat decision must name one state per seat"))
        };
        match self.strategy {
            #[cfg(feature = "pessimistic")]
            Strategy::Pessimistic => pessimistic(&sorted, fence, decide_sorted),
            #[cfg(feature = "optimistic")]
            Strategy::Optimistic { max_retries } => {
                optimistic(&sorted, fence, max_retries, decide_sorted)
            }
        }
    }
}

impl SeatTable {
    /// [`Self::transact`] with a decision beside the seats' next states: `decide` returns both,
    /// and the decision of the attempt that was stored is returned.
    pub fn transact_decision<D, F>(
        &self,
        cells: &[Arc<SeatCell>],
        fence: Option<FencingToken>,
        decide: F,
    ) -> Result<D, Error>
    where
        F: Fn(&[SeatState]) -> Result<(D, Vec<SeatState>), Error>,
    {
        let decided = std::cell::RefCell::new(None);
        self.transact(cells, fence, |states| {
            let (d, next) = decide(states)?;
            *decided.borrow_mut() = Some(d);
            Ok(next)
        })?;
        decided
            .into_inner()
            .ok_or_else(|| Error::invalid("a seat transaction succeeded without a decision"))
    }
}

#[cfg(feature = "pessimistic")]
fn pessimistic<F>(
    cells: &[Arc<SeatCell>],
    fence: Option<FencingToken>,
    decide: F,
) -> Result<(), Error>
where
    F: Fn(&[SeatState]) -> Result<Vec<SeatState>, Error>,
{
    let mut guards: Vec<_> = cells.iter().map(|c| lock(&c.slot)).collect();
    if !guards.iter().all(|g| rules::fence_allows(g.fence, fence)) {
        return Err(Error::LockLost);
    }
    let states: Vec<SeatState> = guards.iter().map(|g| g.state).collect();
    let next = decide(&states)?;
    // Versions are the optimistic strategy's; a table has one strategy for its life.
    for (guard, state) in guards.iter_mut().zip(next) {
        guard.state = state;
        guard.fence = guard.fence.max(fence);
    }
    Ok(())
}

#[cfg(feature = "optimistic")]
fn optimistic<F>(
    cells: &[Arc<SeatCell>],
    fence: Option<FencingToken>,
    max_retries: u32,
    decide: F,
) -> Result<(), Error>
where
    F: Fn(&[SeatState]) -> Result<Vec<SeatState>, Error>,
{
    for _ in 0..=max_retries {
        // Read phase: a snapshot taken one seat at a time, no lock held between, and the
        // decision made on it without any lock held.
        let seen: Vec<Versioned> = cells.iter().map(|c| *lock(&c.slot)).collect();
        if !seen.iter().all(|v| rules::fence_allows(v.fence, fence)) {
            return Err(Error::LockLost);
        }
        let states: Vec<SeatState> = seen.iter().map(|v| v.state).collect();
        let next = decide(&states)?;
        // Write phase: take every cell's lock (ascending id order, as the caller sorted them,
        // so two writers never wait on each other in a cycle), compare every version with the
        // one read, and write all seats or none. Nothing is written before every seat has
        // been validated, so no other writer ever sees a tentative state (a written-then-undone
        // seat could be rewritten by a third writer in between, and the undo then skipped,
        // leaving a phantom hold).
        #[cfg(ticketing_control = "tentative_writes")]
        if tentative_writes(cells, &seen, &next, fence) {
            return Ok(());
        } else {
            continue;
        }
        #[allow(unreachable_code)]
        let mut guards: Vec<_> = cells.iter().map(|c| lock(&c.slot)).collect();
        if guards
            .iter()
            .zip(&seen)
            .any(|(slot, old)| slot.version != old.version)
        {
            drop(guards);
            continue;
        }
        for ((slot, old), state) in guards.iter_mut().zip(&seen).zip(&next) {
            **slot = Versioned {
                version: old.version + 1,
                state: *state,
                fence: old.fence.max(fence),
            };
        }
        return Ok(());
    }
    tracing::debug!(target: "ticketing::memory", max_retries, "seat writes kept conflicting");
    Err(Error::Unavailable {
        message: format!("seat writes kept conflicting after {max_retries} retries"),
        retryable: true,
        source: None,
    })
}

/// The negative control of the phantom-hold fix, compiled only with
/// `--cfg ticketing_control="tentative_writes"` (see `scripts/controls.sh`): the old write
/// phase, which compare-and-sets seats one at a time and undoes the ones already set when a
/// later one loses, but only if each still carries this attempt's version. A third writer that
/// rewrites such a seat in between makes the undo skip it: the loom model
/// `a_release_between_tentative_write_and_undo_leaves_no_phantom_hold` must fail with it.
#[cfg(all(feature = "optimistic", ticketing_control = "tentative_writes"))]
fn tentative_writes(
    cells: &[Arc<SeatCell>],
    seen: &[Versioned],
    next: &[SeatState],
    fence: Option<FencingToken>,
) -> bool {
    let mut done = 0;
    for ((cell, old), state) in cells.iter().zip(seen).zip(next) {
        let mut slot = lock(&cell.slot);
        if slot.version != old.version {
            break;
        }
        *slot = Versioned {
            version: old.version + 1,
            state: *state,
            fence: old.fence.max(fence),
        };
        done += 1;
    }
    if done == cells.len() {
        return true;
    }
    for (cell, old) in cells.iter().zip(seen).take(done) {
        let mut slot = lock(&cell.slot);
        if slot.version == old.version + 1 {
            *slot = Versioned {
                version: old.version + 2,
                state: old.state,
                fence: old.fence,
            };
        }
    }
    false
}

#[cfg(all(test, not(loom), feature = "optimistic"))]
mod tests {
    use std::cell::Cell;

    use chrono::{Duration, Utc};
    use ticketing_core::{OptionId, Points, ReservationId};

    use super::*;

    /// A writer that commits between another's read and write phases must make that other one
    /// decide again on what it wrote (the version compare), not write over it.
    #[test]
    fn a_write_between_read_and_write_phase_makes_the_reader_decide_again() {
        let cells = vec![Arc::new(SeatCell::new(Seat {
            id: SeatId(1),
            option_id: OptionId(1),
            seat_no: "A-1".into(),
            grade: "R".into(),
            price: Points(100),
        }))];
        let until = Utc::now() + Duration::minutes(5);
        let (mine, theirs) = (ReservationId::new(), ReservationId::new());
        let hold = |r: ReservationId| {
            move |states: &[SeatState]| match states {
                [SeatState::Available] => Ok(vec![SeatState::Held {
                    reservation: r,
                    until,
                }]),
                _ => Err(Error::SeatUnavailable {
                    seats: vec![SeatId(1)],
                }),
            }
        };
        let decisions = Cell::new(0);
        let result = optimistic(&cells, None, 3, |states| {
            decisions.set(decisions.get() + 1);
            if decisions.get() == 1 {
                optimistic(&cells, None, 3, hold(theirs)).expect("the other writer");
            }
            hold(mine)(states)
        });
        assert!(result.is_err(), "the seat was taken in between: {result:?}");
        assert_eq!(decisions.get(), 2, "decided again after the conflict");
        assert_eq!(
            cells[0].state(),
            SeatState::Held {
                reservation: theirs,
                until
            }
        );
    }
}
