//! Conversions between domain values and SQLite column values.
//!
//! Instants are stored as whole milliseconds since the Unix epoch (UTC), so finer parts of
//! a second are dropped. Enums are stored as their snake_case API names.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tact_domain::{Channel, Outcome, Purpose, SignalKind, Topic};

use crate::{Error, Result};

/// Milliseconds since the Unix epoch.
pub(crate) fn to_ms(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// Converts milliseconds since the Unix epoch to an instant.
pub(crate) fn from_ms(entity: &'static str, id: i64, ms: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| Error::InvalidRow {
        entity,
        id,
        reason: format!("timestamp {ms} ms is out of range"),
    })
}

/// Returns the serde name of a unit enum variant.
pub(crate) fn enum_text<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(text)) => text,
        other => format!("{other:?}"),
    }
}

/// Parses a unit enum variant from its serde name.
pub(crate) fn parse_enum<T: DeserializeOwned>(
    entity: &'static str,
    id: i64,
    text: &str,
) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).map_err(|error| {
        Error::InvalidRow {
            entity,
            id,
            reason: format!("unknown value {text:?}: {error}"),
        }
    })
}

/// Serialises a value to JSON text.
pub(crate) fn to_json<T: Serialize>(value: &T) -> String {
    // serde_json fails only on maps with non-string keys, and the stored types (preferences,
    // consent changes, audiences, reasons, template fields) have string keys only.
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

/// Parses JSON text stored in a column.
pub(crate) fn from_json<T: DeserializeOwned>(
    entity: &'static str,
    id: i64,
    text: &str,
) -> Result<T> {
    serde_json::from_str(text).map_err(|error| Error::InvalidRow {
        entity,
        id,
        reason: format!("invalid JSON: {error}"),
    })
}

pub(crate) fn parse_channel(entity: &'static str, id: i64, text: &str) -> Result<Channel> {
    match text {
        "email" => Ok(Channel::EMAIL),
        "phone" => Ok(Channel::PHONE),
        "sms" => Ok(Channel::SMS),
        _ => Channel::parse(text).map_err(|error| invalid(entity, id, error)),
    }
}

pub(crate) fn parse_topic(
    entity: &'static str,
    id: i64,
    text: Option<&str>,
) -> Result<Option<Topic>> {
    text.map(|text| Topic::parse(text).map_err(|error| invalid(entity, id, error)))
        .transpose()
}

pub(crate) fn parse_purpose(entity: &'static str, id: i64, text: &str) -> Result<Purpose> {
    Purpose::parse(text).ok_or_else(|| invalid(entity, id, format!("unknown purpose {text:?}")))
}

pub(crate) fn parse_signal_kind(entity: &'static str, id: i64, text: &str) -> Result<SignalKind> {
    SignalKind::parse(text)
        .ok_or_else(|| invalid(entity, id, format!("unknown signal kind {text:?}")))
}

pub(crate) fn outcome_text(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Pending => "pending",
        Outcome::Sent => "sent",
        Outcome::Delivered => "delivered",
        Outcome::Answered => "answered",
        Outcome::NoAnswer => "no_answer",
        Outcome::Failed => "failed",
    }
}

pub(crate) fn parse_outcome(entity: &'static str, id: i64, text: &str) -> Result<Outcome> {
    let outcome = match text {
        "pending" => Outcome::Pending,
        "sent" => Outcome::Sent,
        "delivered" => Outcome::Delivered,
        "answered" => Outcome::Answered,
        "no_answer" => Outcome::NoAnswer,
        "failed" => Outcome::Failed,
        _ => return Err(invalid(entity, id, format!("unknown outcome {text:?}"))),
    };
    Ok(outcome)
}

fn invalid(entity: &'static str, id: i64, reason: impl ToString) -> Error {
    Error::InvalidRow {
        entity,
        id,
        reason: reason.to_string(),
    }
}
