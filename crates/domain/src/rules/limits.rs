//! Turning a limit's room into a verdict with a message that carries the numbers.

use std::fmt;

use chrono::{DateTime, Utc};

use super::{Context, Verdict};
use crate::counting::Room;
use crate::time::{write_integer, write_limit, write_period, write_span};
use crate::{Limit, Period};

/// Turns the room in `limit` into the verdict for a proposal that needs `amount` units.
///
/// `unit` is the unit counted, singular ("contact", "weight unit", "call minute"). `owner`
/// names whose limit it is ("the customer's limit"), and is called only for messages.
pub(crate) fn verdict(
    context: &Context<'_>,
    room: Room,
    limit: &Limit,
    amount: u64,
    unit: &str,
    owner: impl FnOnce() -> String,
) -> Verdict {
    match room {
        Room::Fits { .. } => Verdict::Allow,
        Room::From { at, used } => Verdict::Defer {
            until: at,
            message: context.say(|| {
                message(|out| {
                    write_counted(out, used, unit)?;
                    out.push(' ');
                    write_period_phrase(out, limit.per)?;
                    if amount != 1 {
                        out.push_str(" and this contact needs ");
                        write_counted(out, amount, unit)?;
                    }
                    out.push_str("; ");
                    out.push_str(&owner());
                    out.push_str(" is ");
                    write_limit(out, limit)
                })
            }),
        },
        Room::Never { .. } if limit.max == 0 => {
            context.deny(|| format!("{} is 0 (never)", owner()))
        }
        Room::Never { .. } => context.deny(|| {
            format!(
                "this contact needs {} but {} is {limit}",
                counted(amount, unit),
                owner()
            )
        }),
    }
}

/// Builds a message in one string with the `write_*` functions, which skip the formatter.
/// Writing to a `String` never fails, so the result of `write` is dropped.
pub(crate) fn message(write: impl FnOnce(&mut String) -> fmt::Result) -> String {
    let mut text = String::with_capacity(128);
    let _ = write(&mut text);
    text
}

/// "in the last 30 days" or "this calendar month".
pub(crate) fn period_phrase(period: Period) -> impl fmt::Display {
    PeriodPhrase(period)
}

/// "1 contact" or "3 contacts".
pub(crate) fn counted(count: u64, unit: &str) -> impl fmt::Display + '_ {
    Counted(count, unit)
}

/// Writes "in the last 30 days" or "this calendar month".
pub(crate) fn write_period_phrase(out: &mut impl fmt::Write, period: Period) -> fmt::Result {
    match period {
        Period::Rolling(span) => {
            out.write_str("in the last ")?;
            write_span(out, span)
        }
        Period::Calendar(_) => {
            out.write_str("this ")?;
            write_period(out, period)
        }
    }
}

/// Writes "1 contact" or "3 contacts".
pub(crate) fn write_counted(out: &mut impl fmt::Write, count: u64, unit: &str) -> fmt::Result {
    write_integer(out, count)?;
    out.write_str(" ")?;
    out.write_str(unit)?;
    if count != 1 {
        out.write_str("s")?;
    }
    Ok(())
}

// Messages built with `format!` write these straight into the final string, with no
// intermediate strings.
struct PeriodPhrase(Period);
struct Counted<'a>(u64, &'a str);

impl fmt::Display for PeriodPhrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_period_phrase(f, self.0)
    }
}

impl fmt::Display for Counted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_counted(f, self.0, self.1)
    }
}

/// Formats an instant as RFC 3339 in UTC to the second, as in decisions' `until`.
pub(crate) fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
