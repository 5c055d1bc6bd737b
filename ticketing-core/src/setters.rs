//! Chainable setters for the configuration structs, which are `#[non_exhaustive]` (a field can
//! be added without breaking users) and so cannot be built with a struct expression outside
//! their crate: `ServiceConfig::default().with_hold_ttl(..).with_max_seats_per_user(2)`.

/// Generate `pub fn with_<field>(self, value) -> Self` for the listed fields of a struct.
#[doc(hidden)]
#[macro_export]
macro_rules! __with_setters {
    ($ty:ty { $($setter:ident => $field:ident: $t:ty),* $(,)? }) => {
        impl $ty {
            $(
                #[doc = concat!("With this `", stringify!($field), "`.")]
                #[must_use]
                pub fn $setter(mut self, $field: $t) -> Self {
                    self.$field = $field;
                    self
                }
            )*
        }
    };
}
