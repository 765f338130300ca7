//! Serde adapters between chrono types and Avro logical types.
//!
//! Avro carries dates as `int` days since 1970-01-01 (`date`) and instants as `long`
//! milliseconds since the epoch (`timestamp-millis`); the Rust types use chrono.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

const EPOCH: NaiveDate = match NaiveDate::from_ymd_opt(1970, 1, 1) {
    Some(d) => d,
    None => panic!("the epoch is a valid date"),
};

/// Days since 1970-01-01 for a date.
pub fn days_from_date(date: NaiveDate) -> i32 {
    // Any date chrono can represent is within ±262,143 years: the day count fits in i32.
    i32::try_from(date.signed_duration_since(EPOCH).num_days()).unwrap_or(i32::MAX)
}

/// The date `days` after 1970-01-01, if representable.
pub fn date_from_days(days: i32) -> Option<NaiveDate> {
    EPOCH.checked_add_signed(chrono::Duration::days(i64::from(days)))
}

/// `date` logical type: `NaiveDate` ↔ `int` days.
pub mod date {
    use super::*;

    /// Serialize a date as days since the epoch.
    pub fn serialize<S: Serializer>(d: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i32(days_from_date(*d))
    }

    /// Deserialize a date from days since the epoch.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
        let days = i32::deserialize(d)?;
        date_from_days(days).ok_or_else(|| D::Error::custom(format!("date out of range: {days}")))
    }
}

/// Optional `date` logical type: `Option<NaiveDate>` ↔ `["null", int]`.
pub mod option_date {
    use super::*;

    /// Serialize an optional date as optional days since the epoch.
    pub fn serialize<S: Serializer>(d: &Option<NaiveDate>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&days_from_date(*d)),
            None => s.serialize_none(),
        }
    }

    /// Deserialize an optional date from optional days since the epoch.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDate>, D::Error> {
        match Option::<i32>::deserialize(d)? {
            Some(days) => date_from_days(days)
                .map(Some)
                .ok_or_else(|| D::Error::custom(format!("date out of range: {days}"))),
            None => Ok(None),
        }
    }
}

/// `timestamp-millis` logical type: `DateTime<Utc>` ↔ `long` milliseconds.
pub mod timestamp_millis {
    use super::*;

    /// Serialize an instant as milliseconds since the epoch.
    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(t.timestamp_millis())
    }

    /// Deserialize an instant from milliseconds since the epoch.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let ms = i64::deserialize(d)?;
        Utc.timestamp_millis_opt(ms)
            .single()
            .ok_or_else(|| D::Error::custom(format!("timestamp out of range: {ms}")))
    }
}
