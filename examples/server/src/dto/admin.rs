//! The JSON shapes of the admin endpoints.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ticketing::{Catalog, Concert, ConcertId, OptionId, Points, Seat, SeatId, ShowOption};
use utoipa::ToSchema;

/// Concerts, options and seats to add, all or none: ids already taken, an option of an unknown
/// concert, a seat of an unknown option, a negative price or a sale that ends before it opens
/// is `400 invalid_request` and adds nothing. The same shape as a `--catalog` file.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CatalogBody {
    /// Concerts to add.
    #[serde(default)]
    pub concerts: Vec<ConcertBody>,
    /// Options to add, of new or existing concerts.
    #[serde(default)]
    pub options: Vec<OptionBody>,
    /// Seats to add, of new or existing options.
    #[serde(default)]
    pub seats: Vec<SeatBody>,
}

/// A concert to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConcertBody {
    /// Its id (positive, not taken).
    #[schema(minimum = 1)]
    #[serde(deserialize_with = "crate::dto::int::int")]
    pub id: i64,
    /// The title.
    pub title: String,
    /// Where.
    pub venue: String,
}

/// A dated option to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OptionBody {
    /// Its id (positive, not taken).
    #[schema(minimum = 1)]
    #[serde(deserialize_with = "crate::dto::int::int")]
    pub id: i64,
    /// Its concert.
    #[schema(minimum = 1)]
    #[serde(deserialize_with = "crate::dto::int::int")]
    pub concert_id: i64,
    /// When the show starts.
    pub starts_at: DateTime<Utc>,
    /// When the sale opens (absent: at once).
    #[serde(default)]
    pub sale_opens_at: Option<DateTime<Utc>>,
    /// When the sale ends (absent: when the show starts).
    #[serde(default)]
    pub sale_closes_at: Option<DateTime<Utc>>,
}

/// A priced seat to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeatBody {
    /// Its id (positive, not taken).
    #[schema(minimum = 1)]
    #[serde(deserialize_with = "crate::dto::int::int")]
    pub id: i64,
    /// Its option.
    #[schema(minimum = 1)]
    #[serde(deserialize_with = "crate::dto::int::int")]
    pub option_id: i64,
    /// The label printed on the ticket.
    pub seat_no: String,
    /// The price grade.
    pub grade: String,
    /// The price in points (0 or more).
    #[schema(minimum = 0)]
    #[serde(deserialize_with = "crate::dto::int::int")]
    pub price: i64,
}

impl From<CatalogBody> for Catalog {
    fn from(b: CatalogBody) -> Self {
        Catalog {
            concerts: b
                .concerts
                .into_iter()
                .map(|c| Concert {
                    id: ConcertId(c.id),
                    title: c.title,
                    venue: c.venue,
                })
                .collect(),
            options: b
                .options
                .into_iter()
                .map(|o| ShowOption {
                    sale_opens_at: o.sale_opens_at,
                    sale_closes_at: o.sale_closes_at,
                    ..ShowOption::new(OptionId(o.id), ConcertId(o.concert_id), o.starts_at)
                })
                .collect(),
            seats: b
                .seats
                .into_iter()
                .map(|s| Seat {
                    id: SeatId(s.id),
                    option_id: OptionId(s.option_id),
                    seat_no: s.seat_no,
                    grade: s.grade,
                    price: Points(s.price),
                })
                .collect(),
        }
    }
}

/// What a catalog addition added.
#[derive(Debug, Serialize, ToSchema)]
pub struct CatalogAdded {
    /// Concerts added.
    pub concerts: usize,
    /// Options added.
    pub options: usize,
    /// Seats added.
    pub seats: usize,
}

/// The body of `PUT /admin/options/{id}/sale`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SaleWindowBody {
    /// When the sale opens (null or absent: at once).
    #[serde(default)]
    pub sale_opens_at: Option<DateTime<Utc>>,
    /// When it ends (null or absent: when the show starts); an instant already past closes it.
    #[serde(default)]
    pub sale_closes_at: Option<DateTime<Utc>>,
}

/// An option with its sale window as stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct OptionSaleView {
    /// The option's id.
    pub id: i64,
    /// Its concert.
    pub concert_id: i64,
    /// When the show starts.
    pub starts_at: DateTime<Utc>,
    /// When the sale opens (null: on sale from the start).
    pub sale_opens_at: Option<DateTime<Utc>>,
    /// When the sale ends as set (null: when the show starts).
    pub sale_closes_at: Option<DateTime<Utc>>,
}

impl From<ShowOption> for OptionSaleView {
    fn from(o: ShowOption) -> Self {
        Self {
            id: o.id.0,
            concert_id: o.concert_id.0,
            starts_at: o.starts_at,
            sale_opens_at: o.sale_opens_at,
            sale_closes_at: o.sale_closes_at,
        }
    }
}
