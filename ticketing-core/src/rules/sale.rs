//! Sale windows: when an option's seats may be held and paid for.

use chrono::{DateTime, Utc};

use crate::domain::{SaleWindow, ShowOption};
use crate::error::Error;

/// The first instant after the sale: `closes_at`, or the show's start when it has none (no
/// seat is sold for a show that has begun).
pub fn sale_end(window: &SaleWindow) -> DateTime<Utc> {
    window.closes_at.unwrap_or(window.starts_at)
}

/// Whether seats may be held at `now`: `sale_not_open` before `opens_at`, `sale_closed` from
/// [`sale_end`] on (the end is exclusive, like a hold's).
pub fn check_sale(window: &SaleWindow, now: DateTime<Utc>) -> Result<(), Error> {
    if let Some(opens_at) = window.opens_at
        && now < opens_at
    {
        return Err(Error::SaleNotOpen { opens_at });
    }
    check_sale_not_ended(window, now)
}

/// Whether a hold may still be paid at `now`: `sale_closed` from [`sale_end`] on. The opening
/// is not checked: a hold made while the sale was open stays payable if the operator moves
/// the opening later.
pub fn check_sale_not_ended(window: &SaleWindow, now: DateTime<Utc>) -> Result<(), Error> {
    let closed_at = sale_end(window);
    if now >= closed_at {
        return Err(Error::SaleClosed { closed_at });
    }
    Ok(())
}

/// Whether a reservation in `status` may be cancelled at `now`: a confirmed one is not once
/// its show has started (`invalid_state`: no refund for a show that has begun); a hold may be
/// released at any time.
pub fn check_cancel_before_show(
    window: &SaleWindow,
    status: crate::domain::ReservationStatus,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    if status == crate::domain::ReservationStatus::Confirmed && now >= window.starts_at {
        return Err(Error::InvalidState {
            state: "confirmed",
            action: "cancel (and refund) once the show has started",
        });
    }
    Ok(())
}

/// The window that ends the sale at `now`: its end moves to `now` unless it was earlier
/// already, and an opening at or after that end is dropped (the sale then never opens).
pub fn close_sale(window: &SaleWindow, now: DateTime<Utc>) -> SaleWindow {
    let end = sale_end(window).min(now);
    SaleWindow {
        starts_at: window.starts_at,
        opens_at: window.opens_at.filter(|at| *at < end),
        closes_at: Some(end),
    }
}

/// `option` with its sale window set to `opens_at`..`closes_at`, checked by
/// [`validate_sale_window`] against the option's (never changing) start: what a store writes for
/// `TicketStore::set_sale_window`.
pub fn with_sale_window(
    option: &ShowOption,
    opens_at: Option<DateTime<Utc>>,
    closes_at: Option<DateTime<Utc>>,
) -> Result<ShowOption, Error> {
    let next = ShowOption {
        sale_opens_at: opens_at,
        sale_closes_at: closes_at,
        ..option.clone()
    };
    validate_sale_window(&next.sale_window())?;
    Ok(next)
}

/// Check a window before it is stored: a sale that would end before it opens is an
/// `invalid_request` (one that has already ended is allowed: that is how a sale is closed).
pub fn validate_sale_window(window: &SaleWindow) -> Result<(), Error> {
    if let Some(opens_at) = window.opens_at
        && opens_at >= sale_end(window)
    {
        return Err(Error::invalid(format!(
            "the sale opens at {opens_at}, not before it closes at {}",
            sale_end(window)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use chrono::Duration;

    fn window(opens: Option<i64>, closes: Option<i64>) -> (SaleWindow, DateTime<Utc>) {
        let t0 = Utc::now();
        let at = |m: i64| t0 + Duration::minutes(m);
        let w = SaleWindow {
            starts_at: at(100),
            opens_at: opens.map(at),
            closes_at: closes.map(at),
        };
        (w, t0)
    }

    #[test]
    fn a_sale_is_open_from_its_opening_instant_until_just_before_its_end() {
        let (w, t0) = window(Some(10), Some(20));
        let at = |m: i64| t0 + Duration::minutes(m);
        let code = |m| check_sale(&w, at(m)).err().map(|e| e.code());
        assert_eq!(code(0), Some(ErrorCode::SaleNotOpen));
        assert_eq!(
            check_sale(&w, at(10) - Duration::microseconds(1))
                .err()
                .map(|e| e.code()),
            Some(ErrorCode::SaleNotOpen)
        );
        assert_eq!(code(10), None);
        assert!(check_sale(&w, at(20) - Duration::microseconds(1)).is_ok());
        assert_eq!(code(20), Some(ErrorCode::SaleClosed));
        assert_eq!(code(500), Some(ErrorCode::SaleClosed));
    }

    #[test]
    fn without_a_closing_instant_the_sale_ends_when_the_show_starts() {
        let (w, t0) = window(None, None);
        assert!(check_sale(&w, t0).is_ok());
        assert!(check_sale(&w, t0 + Duration::minutes(100) - Duration::microseconds(1)).is_ok());
        assert!(matches!(
            check_sale(&w, t0 + Duration::minutes(100)),
            Err(Error::SaleClosed { closed_at }) if closed_at == w.starts_at
        ));
        // A closing instant after the start keeps the sale open (e.g. a festival pass).
        let (late, t0) = window(None, Some(150));
        assert!(check_sale(&late, t0 + Duration::minutes(120)).is_ok());
    }

    #[test]
    fn closing_never_moves_an_end_later_and_drops_an_opening_still_ahead() {
        let (w, t0) = window(Some(10), Some(20));
        let at = |m: i64| t0 + Duration::minutes(m);
        let closed = close_sale(&w, at(15));
        assert_eq!(
            (closed.opens_at, closed.closes_at),
            (Some(at(10)), Some(at(15)))
        );
        assert!(check_sale(&closed, at(15)).is_err());
        let early = close_sale(&w, at(5));
        assert_eq!((early.opens_at, early.closes_at), (None, Some(at(5))));
        assert!(validate_sale_window(&early).is_ok());
        let late = close_sale(&w, at(30));
        assert_eq!(late.closes_at, Some(at(20)), "an earlier end stays");
    }

    #[test]
    fn a_payment_checks_only_the_end_and_a_refund_only_the_start() {
        use crate::domain::ReservationStatus::{Confirmed, Held};
        let (w, t0) = window(Some(10), Some(20));
        let at = |m: i64| t0 + Duration::minutes(m);
        assert!(
            check_sale_not_ended(&w, at(0)).is_ok(),
            "before the opening"
        );
        assert!(check_sale_not_ended(&w, at(20)).is_err());
        assert!(check_cancel_before_show(&w, Confirmed, at(99)).is_ok());
        assert!(check_cancel_before_show(&w, Confirmed, at(100)).is_err());
        assert!(check_cancel_before_show(&w, Held, at(100)).is_ok());
    }

    #[test]
    fn a_window_that_ends_before_it_opens_is_refused() {
        assert!(validate_sale_window(&window(Some(10), Some(20)).0).is_ok());
        assert!(
            validate_sale_window(&window(None, Some(-5)).0).is_ok(),
            "closed"
        );
        assert!(validate_sale_window(&window(Some(20), Some(20)).0).is_err());
        assert!(validate_sale_window(&window(Some(30), Some(20)).0).is_err());
        // Opening after the show starts, with no closing instant of its own.
        assert!(validate_sale_window(&window(Some(100), None).0).is_err());
    }
}
