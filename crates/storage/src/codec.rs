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

// The parsers below take the stored name as bytes, so that the common names are matched
// without first validating them as UTF-8.

pub(crate) fn parse_channel(entity: &'static str, id: i64, name: &[u8]) -> Result<Channel> {
    match name {
        b"email" => Ok(Channel::EMAIL),
        b"phone" => Ok(Channel::PHONE),
        b"sms" => Ok(Channel::SMS),
        _ => Channel::parse(utf8(entity, id, name)?).map_err(|error| invalid(entity, id, error)),
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

pub(crate) fn parse_purpose(entity: &'static str, id: i64, name: &[u8]) -> Result<Purpose> {
    Purpose::ALL
        .into_iter()
        .find(|purpose| purpose.as_str().as_bytes() == name)
        .ok_or_else(|| invalid(entity, id, format!("unknown purpose {:?}", lossy(name))))
}

pub(crate) fn parse_signal_kind(entity: &'static str, id: i64, name: &[u8]) -> Result<SignalKind> {
    SignalKind::ALL
        .into_iter()
        .find(|kind| kind.as_str().as_bytes() == name)
        .ok_or_else(|| invalid(entity, id, format!("unknown signal kind {:?}", lossy(name))))
}

fn utf8<'a>(entity: &'static str, id: i64, name: &'a [u8]) -> Result<&'a str> {
    std::str::from_utf8(name).map_err(|error| invalid(entity, id, error))
}

fn lossy(name: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(name)
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

pub(crate) fn parse_outcome(entity: &'static str, id: i64, name: &[u8]) -> Result<Outcome> {
    let outcome = match name {
        b"pending" => Outcome::Pending,
        b"sent" => Outcome::Sent,
        b"delivered" => Outcome::Delivered,
        b"answered" => Outcome::Answered,
        b"no_answer" => Outcome::NoAnswer,
        b"failed" => Outcome::Failed,
        _ => {
            let reason = format!("unknown outcome {:?}", lossy(name));
            return Err(invalid(entity, id, reason));
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(error: Error) -> String {
        match error {
            Error::InvalidRow { reason, .. } => reason,
            other => panic!("expected an invalid row, got {other:?}"),
        }
    }

    #[test]
    fn names_parse_from_bytes() {
        assert_eq!(
            parse_channel("contact", 1, b"email").ok(),
            Some(Channel::EMAIL)
        );
        assert_eq!(
            parse_channel("contact", 1, b"push").ok(),
            Channel::parse("push").ok()
        );
        assert_eq!(
            parse_purpose("contact", 1, b"value").ok(),
            Some(Purpose::Value)
        );
        assert_eq!(
            parse_signal_kind("signal", 1, b"opened").ok(),
            Some(SignalKind::Opened)
        );
        assert_eq!(
            parse_outcome("contact", 1, b"no_answer").ok(),
            Some(Outcome::NoAnswer)
        );
    }

    #[test]
    fn unknown_names_quote_the_value() {
        let purpose = parse_purpose("contact", 7, b"bragging").unwrap_err();
        let kind = parse_signal_kind("signal", 7, b"waved").unwrap_err();
        let outcome = parse_outcome("contact", 7, b"lost\xff").unwrap_err();
        let channel = parse_channel("contact", 7, b"fax\xff").unwrap_err();

        assert_eq!(reason(purpose), "unknown purpose \"bragging\"");
        assert_eq!(reason(kind), "unknown signal kind \"waved\"");
        assert_eq!(reason(outcome), "unknown outcome \"lost\u{fffd}\"");
        assert!(reason(channel).starts_with("invalid utf-8"), "not UTF-8");
    }
}
