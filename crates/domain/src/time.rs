//! Spans of time and cadence limits ("at most N per period").

use chrono::{Duration, NaiveTime, Weekday};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

use crate::Error;

/// A length of time, written in configuration as a number and a unit: `90s`, `15m`, `12h`,
/// `30d` or `2w`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span(Duration);

impl Span {
    /// A span of whole seconds.
    pub const fn seconds(seconds: i64) -> Self {
        Span(Duration::seconds(seconds))
    }

    /// A span of whole days (each 86,400 seconds).
    pub const fn days(days: i64) -> Self {
        Span(Duration::seconds(days * 86_400))
    }

    /// The span as a chrono duration.
    pub fn duration(self) -> Duration {
        self.0
    }

    /// Parses `<number><unit>` with unit `s`, `m`, `h`, `d` or `w`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSpan`] for anything else, including a negative number.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let invalid = || Error::InvalidSpan {
            value: text.chars().take(40).collect(),
        };
        let text_trimmed = text.trim();
        let split = text_trimmed
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(invalid)?;
        let (number, unit) = text_trimmed.split_at(split);
        let number: i64 = number.parse().map_err(|_| invalid())?;
        let unit_seconds = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3_600,
            "d" => 86_400,
            "w" => 7 * 86_400,
            _ => return Err(invalid()),
        };
        let seconds = number.checked_mul(unit_seconds).ok_or_else(invalid)?;
        if seconds > 100 * 366 * 86_400 {
            return Err(invalid());
        }
        Ok(Span(Duration::seconds(seconds)))
    }
}

impl fmt::Display for Span {
    /// Writes the span in its largest whole unit up to days, as in "30 days" or "90 minutes".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_span(f, *self)
    }
}

/// Writes `span` as its `Display` does, into any writer, so that messages built in a
/// `String` skip the formatter.
pub(crate) fn write_span(out: &mut impl fmt::Write, span: Span) -> fmt::Result {
    let seconds = span.0.num_seconds();
    let units = [(86_400, "day"), (3_600, "hour"), (60, "minute")];
    let (count, name) = units
        .into_iter()
        .find(|(size, _)| seconds != 0 && seconds % size == 0)
        .map_or((seconds, "second"), |(size, name)| (seconds / size, name));
    if count < 0 {
        out.write_str("-")?;
    }
    write_integer(out, count.unsigned_abs())?;
    out.write_str(" ")?;
    out.write_str(name)?;
    if count != 1 {
        out.write_str("s")?;
    }
    Ok(())
}

/// Writes `value` in decimal digits, with no padding. Messages write many small numbers, and
/// this skips the width and flag handling of `Display for u64`.
pub(crate) fn write_integer(out: &mut impl fmt::Write, value: u64) -> fmt::Result {
    let mut rest = value;
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    // Character by character, because checking the buffer as UTF-8 costs more than the
    // few pushes of a small number.
    for &digit in &digits[start..] {
        out.write_char(char::from(digit))?;
    }
    Ok(())
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let seconds = self.0.num_seconds();
        let text = if seconds % 86_400 == 0 {
            format!("{}d", seconds / 86_400)
        } else if seconds % 3_600 == 0 {
            format!("{}h", seconds / 3_600)
        } else if seconds % 60 == 0 {
            format!("{}m", seconds / 60)
        } else {
            format!("{seconds}s")
        };
        serializer.serialize_str(&text)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Span::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A calendar period in the customer's own time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CalendarUnit {
    /// From local midnight to the next local midnight.
    Day,
    /// From Monday 00:00 local time to the next Monday 00:00.
    Week,
    /// From the first of the month 00:00 local time to the first of the next month.
    Month,
}

/// The period a limit counts over.
///
/// Rolling periods count the contacts sent in the `span` before the moment of the decision:
/// a contact sent exactly one span ago no longer counts. Calendar periods count the contacts
/// since the start of the current local day, week (Monday) or month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    /// The span before the decision, rolling.
    Rolling(Span),
    /// The current calendar period in the customer's time zone.
    Calendar(CalendarUnit),
}

impl Period {
    /// Parses `30d` (rolling) or `calendar_day`, `calendar_week`, `calendar_month`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSpan`] when the text is neither.
    pub fn parse(text: &str) -> Result<Self, Error> {
        match text.trim() {
            "calendar_day" => Ok(Period::Calendar(CalendarUnit::Day)),
            "calendar_week" => Ok(Period::Calendar(CalendarUnit::Week)),
            "calendar_month" => Ok(Period::Calendar(CalendarUnit::Month)),
            other => Span::parse(other).map(Period::Rolling),
        }
    }

    /// The maximum stretch of history this period can need, for loading.
    pub fn lookback(self) -> Duration {
        match self {
            Period::Rolling(span) => span.duration(),
            Period::Calendar(CalendarUnit::Day) => Duration::days(2),
            Period::Calendar(CalendarUnit::Week) => Duration::days(8),
            Period::Calendar(CalendarUnit::Month) => Duration::days(32),
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_period(f, *self)
    }
}

/// Writes `period` as its `Display` does, into any writer.
pub(crate) fn write_period(out: &mut impl fmt::Write, period: Period) -> fmt::Result {
    match period {
        Period::Rolling(span) => write_span(out, span),
        Period::Calendar(CalendarUnit::Day) => out.write_str("calendar day"),
        Period::Calendar(CalendarUnit::Week) => out.write_str("calendar week"),
        Period::Calendar(CalendarUnit::Month) => out.write_str("calendar month"),
    }
}

impl Serialize for Period {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Period::Rolling(span) => span.serialize(serializer),
            Period::Calendar(CalendarUnit::Day) => serializer.serialize_str("calendar_day"),
            Period::Calendar(CalendarUnit::Week) => serializer.serialize_str("calendar_week"),
            Period::Calendar(CalendarUnit::Month) => serializer.serialize_str("calendar_month"),
        }
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Period::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// "At most `max` per `per`". A `max` of 0 means "never".
///
/// For the overall budget, `max` counts channel weights (an email may weigh 1 and a call 3);
/// for per-channel and per-purpose limits it counts contacts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// The maximum count in any one period. 0 forbids the contact outright.
    pub max: u32,
    /// The period counted over.
    pub per: Period,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_limit(f, self)
    }
}

/// Writes `limit` as its `Display` does, into any writer.
pub(crate) fn write_limit(out: &mut impl fmt::Write, limit: &Limit) -> fmt::Result {
    if limit.max == 0 {
        return out.write_str("never");
    }
    write_integer(out, u64::from(limit.max))?;
    out.write_str(" per ")?;
    write_period(out, limit.per)
}

/// Hours of the local day, in the customer's time zone, during which contact is welcome.
///
/// `start` is inclusive and `end` exclusive. A window whose `end` is before its `start` runs
/// over midnight (for example 20:00 to 08:00). `days` lists the weekdays it applies to; an
/// empty list means every day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalWindow {
    /// First local time of the window.
    pub start: NaiveTime,
    /// First local time after the window.
    pub end: NaiveTime,
    /// Weekdays on which the window is open; empty means every day.
    #[serde(default)]
    pub days: Vec<Weekday>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_parse_units() {
        assert_eq!(Span::parse("30d").unwrap(), Span::days(30));
        assert_eq!(Span::parse("90s").unwrap(), Span::seconds(90));
        assert_eq!(Span::parse("2w").unwrap(), Span::days(14));
        assert_eq!(Span::parse("12h").unwrap(), Span::seconds(12 * 3600));
    }

    #[test]
    fn span_display_largest_unit() {
        let cases = [
            (Span::seconds(0), "0 seconds"),
            (Span::seconds(1), "1 second"),
            (Span::seconds(90), "90 seconds"),
            (Span::seconds(5_400), "90 minutes"),
            (Span::seconds(3_600), "1 hour"),
            (Span::days(1), "1 day"),
            (Span::days(365), "365 days"),
            (Span::days(-2), "-2 days"),
        ];
        for (span, expected) in cases {
            assert_eq!(span.to_string(), expected);
        }
    }

    #[test]
    fn integer_writer_edge_values() {
        for value in [0, 7, 10, 1_234_567_890, u64::MAX] {
            let mut text = String::new();
            write_integer(&mut text, value).unwrap();
            assert_eq!(text, value.to_string());
        }
    }

    #[test]
    fn span_parse_rejects_garbage() {
        for bad in ["", "d", "-3d", "3", "3y", "3 d x", "99999999999999999d"] {
            assert!(Span::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn limit_display() {
        let limit = Limit {
            max: 3,
            per: Period::Rolling(Span::days(30)),
        };
        assert_eq!(limit.to_string(), "3 per 30 days");
        let never = Limit {
            max: 0,
            per: Period::Calendar(CalendarUnit::Month),
        };
        assert_eq!(never.to_string(), "never");
    }
}
