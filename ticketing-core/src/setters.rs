//! Chainable setters for the configuration structs, which are `#[non_exhaustive]` (a field can
//! be added without breaking users) and so cannot be built with a struct expression outside
//! their crate: `ServiceConfig::default().with_hold_ttl(..).with_max_seats_per_user(2)`.
//!
//! The rule of the API: `#[non_exhaustive]` on what users build or match and the library may
//! grow (configurations, requests, statuses users read, provider outcomes); exhaustive on what
//! a backend must store and load field by field or state by state (the catalog records,
//! `Reservation` and `ReservationStatus`, `SeatState`, the store commands, payment attempts), so
//! that a new field or state is a compile error in every backend rather than a value silently
//! dropped. The catalog records have constructors for users all the same.

/// Generate `pub fn with_<field>(self, value) -> Self` for the listed fields of a struct.
#[doc(hidden)]
#[macro_export]
macro_rules! __with_setters {
    ($ty:ty { $($setter:ident => $field:ident: $t:ty),* $(,)? }) => {
        impl $ty {
            $(
                #[doc = concat!("Sets [`", stringify!($field), "`](Self::", stringify!($field), ").")]
                #[must_use]
                pub fn $setter(mut self, $field: $t) -> Self {
                    self.$field = $field;
                    self
                }
            )*
        }
    };
}
