//! Turning a limit's room into a verdict with a message that carries the numbers.

use std::fmt;

use chrono::{DateTime, Utc};

use super::{Context, Verdict};
use crate::counting::Room;
use crate::time::write_integer;
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
                format!(
                    "{} {}{}; {} is {limit}",
                    counted(used, unit),
                    period_phrase(limit.per),
                    amount_phrase(amount, unit),
                    owner()
                )
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

/// "in the last 30 days" or "this calendar month".
pub(crate) fn period_phrase(period: Period) -> impl fmt::Display {
    PeriodPhrase(period)
}

/// Nothing for one unit, else " and this contact needs 3 weight units".
fn amount_phrase(amount: u64, unit: &str) -> impl fmt::Display + '_ {
    AmountPhrase(amount, unit)
}

/// "1 contact" or "3 contacts".
pub(crate) fn counted(count: u64, unit: &str) -> impl fmt::Display + '_ {
    Counted(count, unit)
}

// Messages are written straight into the final string through these, with no
// intermediate strings.
struct PeriodPhrase(Period);
struct AmountPhrase<'a>(u64, &'a str);
struct Counted<'a>(u64, &'a str);

impl fmt::Display for PeriodPhrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Period::Rolling(span) => {
                f.write_str("in the last ")?;
                fmt::Display::fmt(&span, f)
            }
            period @ Period::Calendar(_) => {
                f.write_str("this ")?;
                fmt::Display::fmt(&period, f)
            }
        }
    }
}

impl fmt::Display for AmountPhrase<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            1 => Ok(()),
            amount => write!(f, " and this contact needs {}", Counted(amount, self.1)),
        }
    }
}

impl fmt::Display for Counted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Counted(count, unit) = *self;
        write_integer(f, count)?;
        f.write_str(" ")?;
        f.write_str(unit)?;
        if count != 1 {
            f.write_str("s")?;
        }
        Ok(())
    }
}

/// Formats an instant as RFC 3339 in UTC to the second, as in decisions' `until`.
pub(crate) fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
