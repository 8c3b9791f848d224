//! Turning a limit's room into a verdict with a message that carries the numbers.

use chrono::{DateTime, Utc};

use super::{Context, Verdict};
use crate::counting::Room;
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
        Room::Never { .. } if limit.max == 0 => Verdict::Deny(format!("{} is 0 (never)", owner())),
        Room::Never { .. } => Verdict::Deny(format!(
            "this contact needs {} but {} is {limit}",
            counted(amount, unit),
            owner()
        )),
    }
}

/// "in the last 30 days" or "this calendar month".
pub(crate) fn period_phrase(period: Period) -> String {
    match period {
        Period::Rolling(span) => format!("in the last {span}"),
        Period::Calendar(_) => format!("this {period}"),
    }
}

fn amount_phrase(amount: u64, unit: &str) -> String {
    if amount == 1 {
        String::new()
    } else {
        format!(" and this contact needs {}", counted(amount, unit))
    }
}

/// "1 contact" or "3 contacts".
pub(crate) fn counted(count: u64, unit: &str) -> String {
    let plural = if count == 1 { "" } else { "s" };
    format!("{count} {unit}{plural}")
}

/// Formats an instant as RFC 3339 in UTC to the second, as in decisions' `until`.
pub(crate) fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
