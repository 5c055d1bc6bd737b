//! Seat order: stores load and lock seats in ascending id order, while decisions take (and
//! give) the states in the order of the reservation's or the request's seats.

use crate::domain::SeatState;
use crate::error::Error;
use crate::ids::SeatId;

/// The states of the seats loaded (each `loaded` row gives its seat's id and state through
/// `seat`) in the order of `wanted`; `not_found` for a wanted seat that was not loaded.
pub fn states_in_order<R>(
    loaded: &[R],
    seat: impl Fn(&R) -> (SeatId, SeatState),
    wanted: &[SeatId],
) -> Result<Vec<SeatState>, Error> {
    wanted
        .iter()
        .map(|id| {
            loaded
                .iter()
                .map(&seat)
                .find(|(s, _)| s == id)
                .map(|(_, state)| state)
                .ok_or_else(|| Error::not_found("seat", id))
        })
        .collect()
}

/// `next` (in the order of `wanted`) rearranged into the order of `loaded`; a loaded seat that
/// is not wanted keeps its state.
pub fn in_loaded_order<R>(
    loaded: &[R],
    seat: impl Fn(&R) -> (SeatId, SeatState),
    wanted: &[SeatId],
    next: &[SeatState],
) -> Vec<SeatState> {
    loaded
        .iter()
        .map(|r| {
            let (id, state) = seat(r);
            wanted
                .iter()
                .position(|w| *w == id)
                .and_then(|i| next.get(i).copied())
                .unwrap_or(state)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ReservationId;
    use chrono::Utc;

    #[test]
    fn states_go_to_the_wanted_order_and_back() {
        let r = ReservationId::new();
        let held = SeatState::Held {
            reservation: r,
            until: Utc::now(),
        };
        let loaded = [(SeatId(1), SeatState::Available), (SeatId(2), held)];
        let wanted = [SeatId(2), SeatId(1)];
        let pair = |x: &(SeatId, SeatState)| *x;
        assert_eq!(
            states_in_order(&loaded, pair, &wanted).expect("all loaded"),
            [held, SeatState::Available]
        );
        let sold = SeatState::Sold { reservation: r };
        assert_eq!(
            in_loaded_order(&loaded, pair, &[SeatId(2)], &[sold]),
            [SeatState::Available, sold]
        );
        assert!(states_in_order(&loaded, pair, &[SeatId(3)]).is_err());
    }
}
