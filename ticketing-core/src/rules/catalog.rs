//! What a catalog must be to be added to a store.

use std::collections::HashSet;

use crate::domain::Catalog;
use crate::error::Error;
use crate::ids::{ConcertId, OptionId, SeatId};
use crate::rules::validate_sale_window;

/// Check a catalog before any of it is added (all or none): every id positive, neither taken
/// in the catalog itself nor already stored (`concert_stored`, `option_stored`, `seat_stored`
/// answer for the store), every option of a concert that exists (in the catalog or stored),
/// with a sale window that does not end before it opens, every seat of an option that exists,
/// no negative price. The first breach is an `invalid_request` naming it.
pub fn validate_catalog(
    catalog: &Catalog,
    concert_stored: impl Fn(ConcertId) -> bool,
    option_stored: impl Fn(OptionId) -> bool,
    seat_stored: impl Fn(SeatId) -> bool,
) -> Result<(), Error> {
    let taken = |what: &str, id: i64| Error::invalid(format!("{what} id {id} is invalid or taken"));
    let mut concerts = HashSet::new();
    for c in &catalog.concerts {
        if c.id.0 <= 0 || concert_stored(c.id) || !concerts.insert(c.id) {
            return Err(taken("concert", c.id.0));
        }
    }
    let mut options = HashSet::new();
    for o in &catalog.options {
        if o.id.0 <= 0 || option_stored(o.id) || !options.insert(o.id) {
            return Err(taken("option", o.id.0));
        }
        if !concerts.contains(&o.concert_id) && !concert_stored(o.concert_id) {
            return Err(Error::invalid(format!(
                "option {} names unknown concert {}",
                o.id, o.concert_id
            )));
        }
        validate_sale_window(&o.sale_window())?;
    }
    let mut seats = HashSet::new();
    for s in &catalog.seats {
        if s.id.0 <= 0 || seat_stored(s.id) || !seats.insert(s.id) {
            return Err(taken("seat", s.id.0));
        }
        if s.price.0 < 0 {
            return Err(Error::invalid(format!(
                "seat {} has a negative price",
                s.id
            )));
        }
        if !options.contains(&s.option_id) && !option_stored(s.option_id) {
            return Err(Error::invalid(format!(
                "seat {} names unknown option {}",
                s.id, s.option_id
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Concert, Seat, ShowOption};
    use crate::money::Points;
    use chrono::{Duration, Utc};

    fn catalog() -> Catalog {
        let starts = Utc::now() + Duration::days(1);
        Catalog {
            concerts: vec![Concert {
                id: ConcertId(1),
                title: "t".into(),
                venue: "v".into(),
            }],
            options: vec![ShowOption::new(OptionId(10), ConcertId(1), starts)],
            seats: vec![Seat {
                id: SeatId(100),
                option_id: OptionId(10),
                seat_no: "A-1".into(),
                grade: "R".into(),
                price: Points(5),
            }],
        }
    }

    fn check(c: &Catalog) -> Result<(), Error> {
        validate_catalog(c, |id| id.0 == 2, |id| id.0 == 20, |id| id.0 == 200)
    }

    #[test]
    fn a_catalog_is_refused_for_its_first_breach() {
        assert!(check(&catalog()).is_ok());
        let breaches: Vec<fn(&mut Catalog)> = vec![
            |c| c.concerts[0].id = ConcertId(2),
            |c| c.concerts[0].id = ConcertId(0),
            |c| c.concerts.push(c.concerts[0].clone()),
            |c| c.options[0].id = OptionId(20),
            |c| c.options[0].concert_id = ConcertId(3),
            |c| {
                c.options[0].sale_opens_at = Some(Utc::now() + Duration::days(2));
            },
            |c| c.seats[0].id = SeatId(200),
            |c| c.seats.push(c.seats[0].clone()),
            |c| c.seats[0].price = Points(-1),
            |c| c.seats[0].option_id = OptionId(11),
        ];
        for (i, breach) in breaches.into_iter().enumerate() {
            let mut c = catalog();
            breach(&mut c);
            assert!(check(&c).is_err(), "breach {i} was accepted");
        }
        // Stored ids count as existing: an option of a stored concert, a seat of a stored one.
        let mut c = catalog();
        c.options[0].concert_id = ConcertId(2);
        c.seats[0].option_id = OptionId(20);
        assert!(check(&c).is_ok());
    }
}
