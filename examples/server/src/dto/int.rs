//! Integers as JSON Schema counts them: `1.0` is the integer 1 (the OpenAPI document says
//! `type: integer`, which a number with no fractional part satisfies), so a body that writes an
//! id or an amount as `7.0` is read as 7; `7.5` is still refused.

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// Reads an integer; `strings`: also from a string (a path segment), never in a JSON body.
struct IntVisitor {
    strings: bool,
}

impl Visitor<'_> for IntVisitor {
    type Value = i64;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an integer")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::custom(format!("{v} is out of range")))
    }

    /// A path segment: `7`, or `7.0`.
    fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
        if !self.strings {
            return Err(E::invalid_type(de::Unexpected::Str(v), &self));
        }
        match v.parse::<i64>() {
            Ok(n) => Ok(n),
            Err(_) => match v.parse::<f64>() {
                Ok(f) if f.is_finite() && v.contains('.') => self.visit_f64(f),
                _ => Err(E::custom(format!("{v:?} is not an integer"))),
            },
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
        // 2^63: the first value past i64::MAX, exact as an f64.
        const LIMIT: f64 = 9_223_372_036_854_775_808.0;
        if v.fract() == 0.0 && (-LIMIT..LIMIT).contains(&v) {
            #[allow(clippy::cast_possible_truncation)]
            Ok(v as i64)
        } else {
            Err(E::custom(format!("{v} is not an integer in range")))
        }
    }
}

/// One integer (`deserialize_with`).
pub fn int<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    d.deserialize_any(IntVisitor { strings: false })
}

/// An integer path parameter (`/users/7/points`, also `/users/7.0/points`).
#[derive(Debug, Clone, Copy)]
pub struct Id(pub i64);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(IntVisitor { strings: true }).map(Id)
    }
}

/// An integer as an element of a list.
struct Int(i64);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        int(d).map(Int)
    }
}

/// A list of integers (`deserialize_with`).
pub fn ints<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<i64>, D::Error> {
    Ok(Vec::<Int>::deserialize(d)?
        .into_iter()
        .map(|i| i.0)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Body {
        #[serde(deserialize_with = "int")]
        n: i64,
        #[serde(deserialize_with = "ints")]
        list: Vec<i64>,
    }

    fn parse(json: &str) -> Option<(i64, Vec<i64>)> {
        serde_json::from_str::<Body>(json)
            .ok()
            .map(|b| (b.n, b.list))
    }

    #[test]
    fn path_ids_are_integers_written_either_way() {
        let id = |s: &str| {
            serde_json::from_value::<Id>(serde_json::Value::String(s.into()))
                .ok()
                .map(|i| i.0)
        };
        assert_eq!(id("42"), Some(42));
        assert_eq!(id("42.0"), Some(42));
        assert_eq!(id("-1"), Some(-1));
        for bad in ["42.5", "4e1", "abc", "", "NaN", "inf", "1e400"] {
            assert_eq!(id(bad), None, "{bad}");
        }
    }

    #[test]
    fn integral_numbers_are_integers_and_nothing_else_is() {
        assert_eq!(
            parse(r#"{"n": 7, "list": [1, 2.0]}"#),
            Some((7, vec![1, 2]))
        );
        assert_eq!(parse(r#"{"n": 7.0, "list": []}"#), Some((7, vec![])));
        assert_eq!(parse(r#"{"n": -3e2, "list": []}"#), Some((-300, vec![])));
        for bad in [
            r#"{"n": 7.5, "list": []}"#,
            r#"{"n": "7", "list": []}"#,
            r#"{"n": 1e19, "list": []}"#,
            r#"{"n": 9223372036854775808, "list": []}"#,
            r#"{"n": 1, "list": [1.5]}"#,
            r#"{"n": null, "list": []}"#,
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        assert_eq!(
            parse(r#"{"n": 9223372036854775807, "list": []}"#),
            Some((i64::MAX, vec![]))
        );
    }
}
