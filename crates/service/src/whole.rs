//! Whole numbers as JSON Schema reads them: `2.0` is an `integer` as much as `2` is (JSON Schema 2020-12
//! §6.3 counts any number with a zero fractional part), but serde's integer types refuse it. The request
//! fields the OpenAPI document declares `integer` deserialise with these, so a request valid by the
//! document is not refused for the way a client's JSON library wrote a number.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

/// The number as an `i128` when it is whole; an error naming what was expected otherwise.
fn whole<'de, D: Deserializer<'de>>(number: serde_json::Number) -> Result<i128, D::Error> {
    if let Some(n) = number.as_i64() {
        return Ok(i128::from(n));
    }
    if let Some(n) = number.as_u64() {
        return Ok(i128::from(n));
    }
    match number.as_f64() {
        // Beyond 2^63 a float is a whole number anyway; the range check below refuses it.
        Some(f) if f.fract() == 0.0 && f.abs() < 1e19 => Ok(f as i128),
        _ => Err(D::Error::custom(format!("invalid value: {number}, expected a whole number"))),
    }
}

fn fit<'de, D: Deserializer<'de>, T: TryFrom<i128>>(n: i128) -> Result<T, D::Error> {
    T::try_from(n).map_err(|_| D::Error::custom(format!("invalid value: {n} is out of range")))
}

/// A required whole number (`#[serde(deserialize_with = "crate::whole::required")]`).
pub fn required<'de, D: Deserializer<'de>, T: TryFrom<i128>>(d: D) -> Result<T, D::Error> {
    let number = serde_json::Number::deserialize(d)?;
    fit::<D, T>(whole::<D>(number)?)
}

/// An optional whole number (with `#[serde(default)]`).
pub fn optional<'de, D: Deserializer<'de>, T: TryFrom<i128>>(d: D) -> Result<Option<T>, D::Error> {
    match Option::<serde_json::Number>::deserialize(d)? {
        None => Ok(None),
        Some(number) => fit::<D, T>(whole::<D>(number)?).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Body {
        #[serde(deserialize_with = "super::required")]
        months: u32,
        #[serde(default, deserialize_with = "super::optional")]
        from: Option<i64>,
    }

    fn parse(json: &str) -> Option<(u32, Option<i64>)> {
        serde_json::from_str::<Body>(json).ok().map(|b| (b.months, b.from))
    }

    #[test]
    fn whole_numbers_in_any_notation_and_nothing_else() {
        assert_eq!(parse(r#"{"months": 2}"#), Some((2, None)));
        assert_eq!(parse(r#"{"months": 2.0, "from": -7.0}"#), Some((2, Some(-7))));
        assert_eq!(parse(r#"{"months": 2e0, "from": null}"#), Some((2, None)));
        assert_eq!(parse(r#"{"months": 2.5}"#), None);
        assert_eq!(parse(r#"{"months": -1}"#), None);
        assert_eq!(parse(r#"{"months": 4294967296}"#), None);
        assert_eq!(parse(r#"{"months": "2"}"#), None);
        assert_eq!(parse(r#"{"months": 1e300}"#), None);
    }
}
