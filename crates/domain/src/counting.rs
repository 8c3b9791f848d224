//! Counting past contacts against a limit, and finding when a limit next has room.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::zone::{next_period_start, period_start};
use crate::{Limit, Period};

/// The standing of a limit for a proposed amount at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Room {
    /// The amount fits; `used` was already taken in the current period.
    Fits { used: u64 },
    /// The amount fits from `at` on, the earliest such instant.
    From { at: DateTime<Utc>, used: u64 },
    /// The amount never fits: the limit is 0 or smaller than the amount itself.
    Never { used: u64 },
}

/// Returns the earliest instant a use can have and still count at `at`: uses at or after it may
/// count, uses before it never do.
pub(crate) fn window_floor(zone: Tz, period: Period, at: DateTime<Utc>) -> DateTime<Utc> {
    match period {
        Period::Rolling(span) => at - span.duration(),
        Period::Calendar(unit) => period_start(zone, unit, at),
    }
}

/// Finds the earliest instant at or after `at` at which `amount` more fits into `limit`.
///
/// `items` are past uses as (instant, amount), oldest first. A rolling period counts the
/// uses in `(at - span, at]`, so a use exactly one span old no longer counts. A calendar
/// period counts the uses since its start at local midnight in `zone`. Uses after `at`
/// count too, which is conservative; views hold none.
pub(crate) fn room<I>(zone: Tz, limit: &Limit, items: I, amount: u64, at: DateTime<Utc>) -> Room
where
    I: Iterator<Item = (DateTime<Utc>, u64)> + Clone,
{
    let floor = window_floor(zone, limit.per, at);
    room_from(zone, limit, floor, items, amount, at)
}

/// Does what [`room`] does, given `floor = window_floor(zone, limit.per, at)`.
pub(crate) fn room_from<I>(
    zone: Tz,
    limit: &Limit,
    floor: DateTime<Utc>,
    items: I,
    amount: u64,
    at: DateTime<Utc>,
) -> Room
where
    I: Iterator<Item = (DateTime<Utc>, u64)> + Clone,
{
    let max = u64::from(limit.max);
    match limit.per {
        Period::Rolling(span) => {
            let span = span.duration();
            let in_window = items.filter(move |(time, _)| *time > floor);
            let used: u64 = in_window.clone().map(|(_, amount)| amount).sum();
            if max == 0 || amount > max {
                return Room::Never { used };
            }
            if used + amount <= max {
                return Room::Fits { used };
            }
            let excess = used + amount - max;
            let mut dropped = 0;
            for (time, item_amount) in in_window {
                dropped += item_amount;
                if dropped >= excess {
                    return Room::From {
                        at: time + span,
                        used,
                    };
                }
            }
            Room::Never { used }
        }
        Period::Calendar(unit) => {
            let used: u64 = items
                .filter(|(time, _)| *time >= floor)
                .map(|(_, amount)| amount)
                .sum();
            if max == 0 || amount > max {
                return Room::Never { used };
            }
            if used + amount <= max {
                return Room::Fits { used };
            }
            let next = next_period_start(zone, unit, at);
            Room::From { at: next, used }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::utc;
    use crate::{CalendarUnit, Span};
    use chrono::Duration;
    use chrono_tz::Europe::Berlin;

    fn rolling(max: u32, days: i64) -> Limit {
        Limit {
            max,
            per: Period::Rolling(Span::days(days)),
        }
    }

    #[test]
    fn rolling_excludes_exactly_one_span() {
        let now = utc(2026, 6, 30, 12, 0);
        let old = now - Duration::days(30);
        let uses = [(old, 1), (now - Duration::days(1), 1)];

        let result = room(Berlin, &rolling(2, 30), uses.into_iter(), 1, now);

        assert_eq!(result, Room::Fits { used: 1 });
    }

    #[test]
    fn rolling_includes_one_second_less() {
        let now = utc(2026, 6, 30, 12, 0);
        let almost = now - Duration::days(30) + Duration::seconds(1);
        let uses = [(almost, 1), (now - Duration::days(1), 1)];

        let result = room(Berlin, &rolling(2, 30), uses.into_iter(), 1, now);

        assert_eq!(
            result,
            Room::From {
                at: now + Duration::seconds(1),
                used: 2
            }
        );
    }

    #[test]
    fn rolling_drops_enough_weight() {
        // Budget 8; uses 3 + 1 + 3 = 7; a 3-unit call needs 2 units dropped, so the first
        // use (3 units) must leave the window.
        let now = utc(2026, 6, 30, 12, 0);
        let first = utc(2026, 6, 5, 9, 0);
        let uses = [
            (first, 3),
            (utc(2026, 6, 10, 9, 0), 1),
            (utc(2026, 6, 20, 9, 0), 3),
        ];

        let result = room(Berlin, &rolling(8, 30), uses.into_iter(), 3, now);

        assert_eq!(
            result,
            Room::From {
                at: first + Duration::days(30),
                used: 7
            }
        );
    }

    #[test]
    fn zero_limit_never_fits() {
        let result = room(
            Berlin,
            &rolling(0, 30),
            std::iter::empty(),
            1,
            utc(2026, 6, 1, 0, 0),
        );

        assert_eq!(result, Room::Never { used: 0 });
    }

    #[test]
    fn amount_above_limit_never_fits() {
        let result = room(
            Berlin,
            &rolling(2, 30),
            std::iter::empty(),
            3,
            utc(2026, 6, 1, 0, 0),
        );

        assert_eq!(result, Room::Never { used: 0 });
    }

    #[test]
    fn calendar_month_resets_at_local_midnight() {
        // 2026-03-31 22:30 UTC is already April 1st 00:30 in Berlin (UTC+2 after the change).
        let monthly = Limit {
            max: 1,
            per: Period::Calendar(CalendarUnit::Month),
        };
        let sent = [(utc(2026, 3, 10, 9, 0), 1)];

        let before = room(
            Berlin,
            &monthly,
            sent.into_iter(),
            1,
            utc(2026, 3, 31, 21, 59),
        );
        let after = room(
            Berlin,
            &monthly,
            sent.into_iter(),
            1,
            utc(2026, 3, 31, 22, 0),
        );

        assert_eq!(
            before,
            Room::From {
                at: utc(2026, 3, 31, 22, 0),
                used: 1
            }
        );
        assert_eq!(after, Room::Fits { used: 0 });
    }

    #[test]
    fn calendar_month_in_winter_time() {
        // March starts at midnight UTC+1, so February's contact stops counting at 23:00 UTC.
        let monthly = Limit {
            max: 1,
            per: Period::Calendar(CalendarUnit::Month),
        };
        let sent = [(utc(2026, 2, 28, 22, 30), 1)];

        let result = room(
            Berlin,
            &monthly,
            sent.into_iter(),
            1,
            utc(2026, 2, 28, 22, 45),
        );

        assert_eq!(
            result,
            Room::From {
                at: utc(2026, 2, 28, 23, 0),
                used: 1
            }
        );
    }
}
