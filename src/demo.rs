//! A demo catalog, as the example server and the rush tool seed it.

use chrono::{Duration, Utc};
use ticketing_core::{Catalog, Concert, ConcertId, OptionId, Points, Seat, SeatId, ShowOption};

/// `concerts` concerts with two dated options each and `seats_per_option` seats per option,
/// ids counting from 1. The first tenth of each option's seats are `VIP` at twice `price`,
/// the rest `R` at `price`. Concert `c` (from 1) has options `2c-1` and `2c`; option `o` has
/// seats `(o-1)*seats_per_option + 1 ..= o*seats_per_option`, labelled row-letter and number.
pub fn demo_catalog(concerts: u32, seats_per_option: u32, price: Points) -> Catalog {
    let start = Utc::now() + Duration::days(30);
    let mut catalog = Catalog::default();
    let per = i64::from(seats_per_option);
    for c in 1..=i64::from(concerts) {
        catalog.concerts.push(Concert {
            id: ConcertId(c),
            title: format!("Demo Concert {c}"),
            venue: format!("Arena {c}"),
        });
        for o in [2 * c - 1, 2 * c] {
            catalog.options.push(ShowOption::new(
                OptionId(o),
                ConcertId(c),
                start + Duration::days(o),
            ));
            for n in 0..per {
                let vip = n < per / 10;
                catalog.seats.push(Seat {
                    id: SeatId((o - 1) * per + n + 1),
                    option_id: OptionId(o),
                    seat_no: format!("{}-{}", row(n / 50), n % 50 + 1),
                    grade: if vip { "VIP" } else { "R" }.to_owned(),
                    price: if vip {
                        Points(price.0.saturating_mul(2))
                    } else {
                        price
                    },
                });
            }
        }
    }
    catalog
}

fn row(n: i64) -> String {
    let letters = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let i = usize::try_from(n).unwrap_or(0);
    let letter = char::from(letters[i % letters.len()]);
    if i < letters.len() {
        letter.to_string()
    } else {
        format!("{letter}{}", i / letters.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_and_options_belong_to_their_concerts() {
        let c = demo_catalog(3, 100, Points(1_000));
        assert_eq!(
            (c.concerts.len(), c.options.len(), c.seats.len()),
            (3, 6, 600)
        );
        let ids: HashSet<_> = c.seats.iter().map(|s| s.id).collect();
        assert_eq!(ids.len(), 600);
        assert!(c.options.iter().all(|o| o.concert_id.0 == (o.id.0 + 1) / 2));
        let vip = c.seats.iter().filter(|s| s.grade == "VIP").count();
        assert_eq!(vip, 60);
        assert!(
            c.seats
                .iter()
                .all(|s| s.price.0 == if s.grade == "VIP" { 2_000 } else { 1_000 })
        );
    }
}
