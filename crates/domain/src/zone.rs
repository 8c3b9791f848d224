//! Local time in the customer's zone: mapping wall-clock times to instants across
//! daylight-saving changes, calendar periods and daily windows.

use chrono::offset::LocalResult;
use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::{CalendarUnit, LocalWindow};

/// Finds the instant at which the wall clock in `zone` first shows `local` or a later time.
///
/// An ambiguous time (the repeated hour of a fall-back change) maps to its earlier instant.
/// A time that does not exist (inside the skipped hour of a spring-forward change) maps to
/// the first instant after the gap, which is the instant of the change itself.
pub(crate) fn to_instant(zone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(instant) => instant.with_timezone(&Utc),
        LocalResult::Ambiguous(first, second) => first.min(second).with_timezone(&Utc),
        LocalResult::None => first_instant_showing(zone, local),
    }
}

/// Searches whole seconds for the first instant whose local time is `local` or later.
/// Offsets change by less than a day, so the result lies within a day of `local`
/// read as UTC.
fn first_instant_showing(zone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let read_as_utc = local.and_utc().timestamp();
    let mut low = read_as_utc - 26 * 3_600;
    let mut high = read_as_utc + 26 * 3_600;
    let shows_local_or_later = |seconds: i64| {
        DateTime::from_timestamp(seconds, 0)
            .is_some_and(|instant| instant.with_timezone(&zone).naive_local() >= local)
    };
    while high - low > 1 {
        let middle = low + (high - low) / 2;
        if shows_local_or_later(middle) {
            high = middle;
        } else {
            low = middle;
        }
    }
    DateTime::from_timestamp(high, 0).unwrap_or(local.and_utc())
}

/// Returns the local date of `instant` in `zone`.
pub(crate) fn local_date(zone: Tz, instant: DateTime<Utc>) -> NaiveDate {
    instant.with_timezone(&zone).date_naive()
}

/// Returns the first local day of the calendar period that contains `date`.
fn period_first_day(unit: CalendarUnit, date: NaiveDate) -> NaiveDate {
    match unit {
        CalendarUnit::Day => date,
        CalendarUnit::Week => {
            date - Duration::days(i64::from(date.weekday().num_days_from_monday()))
        }
        CalendarUnit::Month => date.with_day(1).unwrap_or(date),
    }
}

/// Returns the start of the calendar period containing `instant`, at local midnight in `zone`.
pub(crate) fn period_start(zone: Tz, unit: CalendarUnit, instant: DateTime<Utc>) -> DateTime<Utc> {
    let first_day = period_first_day(unit, local_date(zone, instant));
    to_instant(zone, first_day.and_time(chrono::NaiveTime::MIN))
}

/// Returns the start of the calendar period after the one containing `instant`.
pub(crate) fn next_period_start(
    zone: Tz,
    unit: CalendarUnit,
    instant: DateTime<Utc>,
) -> DateTime<Utc> {
    let first_day = period_first_day(unit, local_date(zone, instant));
    let next_day = match unit {
        CalendarUnit::Day => first_day + Duration::days(1),
        CalendarUnit::Week => first_day + Duration::days(7),
        CalendarUnit::Month => first_day
            .checked_add_months(Months::new(1))
            .unwrap_or(first_day + Duration::days(31)),
    };
    to_instant(zone, next_day.and_time(chrono::NaiveTime::MIN))
}

/// Finds the earliest instant at or after `at` inside `window` in `zone`. Returns `None`
/// only if the window never opens, which a window with at least one weekday cannot do.
///
/// Each opening starts on a local day at `window.start` and ends at the next `window.end`:
/// later the same day, or on the next day when `end` is not after `start` (so `start ==
/// end` is open for 24 hours). `window.days` filters the day an opening starts on.
pub(crate) fn next_opening(
    zone: Tz,
    window: &LocalWindow,
    at: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let local_at = at.with_timezone(&zone).naive_local();
    let today = local_at.date();
    // Only an opening that runs over midnight can have started on the day before.
    let overnight = window.end <= window.start;
    let first_offset = if overnight { -1 } else { 0 };
    for offset in first_offset..=8 {
        // Date arithmetic costs more than the check, and most openings are found today.
        let day = if offset == 0 {
            today
        } else {
            today + Duration::days(offset)
        };
        if !window.days.is_empty() && !window.days.contains(&day.weekday()) {
            continue;
        }
        let end_day = if overnight {
            day + Duration::days(1)
        } else {
            day
        };
        let close = to_instant(zone, end_day.and_time(window.end));
        if close > at {
            let start = day.and_time(window.start);
            // The wall clock already shows `start` or later at `at`, so the first instant
            // that shows it is not after `at`, which saves the second conversion.
            // NOTE: this relies on `to_instant` finding that first instant. Its lookup can
            // differ only where two offset changes fall within one day, which debug builds
            // check for every opening that takes this path.
            if start <= local_at {
                debug_assert!(to_instant(zone, start) <= at);
                return Some(at);
            }
            return Some(to_instant(zone, start).max(at));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::utc;
    use chrono::{NaiveTime, Weekday};
    use chrono_tz::America::New_York;
    use chrono_tz::Europe::Berlin;

    fn local(year: i32, month: u32, day: u32, hour: u32, minute: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(year, month, day)
            .and_then(|date| date.and_hms_opt(hour, minute, 0))
            .unwrap()
    }

    fn window(start: u32, end: u32, days: Vec<Weekday>) -> LocalWindow {
        LocalWindow {
            start: NaiveTime::from_hms_opt(start, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(end, 0, 0).unwrap(),
            days,
        }
    }

    #[test]
    fn instant_of_skipped_time_berlin() {
        // 02:30 does not exist on 2026-03-29; clocks jump from 02:00 (01:00 UTC) to 03:00.
        assert_eq!(
            to_instant(Berlin, local(2026, 3, 29, 2, 30)),
            utc(2026, 3, 29, 1, 0)
        );
    }

    #[test]
    fn day_start_skipped_in_santiago() {
        // Chile moves from UTC-4 to UTC-3 at local midnight on 2026-09-06, so that day
        // starts at 01:00 local, the instant of the change: 04:00 UTC.
        let zone = chrono_tz::America::Santiago;
        let midday = utc(2026, 9, 6, 16, 0);

        assert_eq!(
            period_start(zone, CalendarUnit::Day, midday),
            utc(2026, 9, 6, 4, 0)
        );
    }

    #[test]
    fn instant_of_repeated_time_new_york() {
        // 01:30 happens twice on 2026-11-01; the first is still daylight time (UTC-4).
        assert_eq!(
            to_instant(New_York, local(2026, 11, 1, 1, 30)),
            utc(2026, 11, 1, 5, 30)
        );
    }

    #[test]
    fn month_start_is_local_midnight() {
        let inside_april = utc(2026, 4, 15, 12, 0);
        let month = CalendarUnit::Month;

        assert_eq!(
            period_start(Berlin, month, inside_april),
            utc(2026, 3, 31, 22, 0)
        );
        assert_eq!(
            next_period_start(Berlin, month, inside_april),
            utc(2026, 4, 30, 22, 0)
        );
    }

    #[test]
    fn week_starts_monday_local() {
        // Sunday 2026-03-29 12:00 UTC is in the week from Monday 2026-03-23, Berlin winter time.
        let sunday = utc(2026, 3, 29, 12, 0);

        assert_eq!(
            period_start(Berlin, CalendarUnit::Week, sunday),
            utc(2026, 3, 22, 23, 0)
        );
        assert_eq!(
            next_period_start(Berlin, CalendarUnit::Week, sunday),
            utc(2026, 3, 29, 22, 0)
        );
    }

    #[test]
    fn opening_inside_window_is_now() {
        let at = utc(2026, 6, 10, 10, 0);

        assert_eq!(next_opening(Berlin, &window(8, 20, vec![]), at), Some(at));
    }

    #[test]
    fn opening_after_close_is_next_morning() {
        // 20:00 UTC is 22:00 in Berlin in June; the window reopens at 08:00 local (06:00 UTC).
        let at = utc(2026, 6, 10, 20, 0);

        let next = next_opening(Berlin, &window(8, 20, vec![]), at);

        assert_eq!(next, Some(utc(2026, 6, 11, 6, 0)));
    }

    #[test]
    fn opening_across_spring_forward() {
        // Saturday 2026-03-28 20:00 local is 19:00 UTC (UTC+1); Sunday 08:00 is UTC+2.
        let at = utc(2026, 3, 28, 19, 30);

        let next = next_opening(Berlin, &window(8, 20, vec![]), at);

        assert_eq!(next, Some(utc(2026, 3, 29, 6, 0)));
    }

    #[test]
    fn opening_inside_skipped_hour() {
        // A window from 02:30 opens at the change itself, 03:00 local = 01:00 UTC.
        let starts_in_gap = LocalWindow {
            start: NaiveTime::from_hms_opt(2, 30, 0).unwrap(),
            end: NaiveTime::from_hms_opt(5, 0, 0).unwrap(),
            days: vec![],
        };

        let next = next_opening(Berlin, &starts_in_gap, utc(2026, 3, 28, 12, 0));

        assert_eq!(next, Some(utc(2026, 3, 29, 1, 0)));
    }

    #[test]
    fn opening_across_fall_back() {
        // After 20:00 on Saturday 2026-10-31 (UTC-4), 08:00 on Sunday is already UTC-5.
        let at = utc(2026, 11, 1, 1, 0);

        let next = next_opening(New_York, &window(8, 20, vec![]), at);

        assert_eq!(next, Some(utc(2026, 11, 1, 13, 0)));
    }

    #[test]
    fn opening_overnight_window() {
        // A 22:00 to 06:00 window is open at 01:00 local and next opens at 22:00 after 06:00.
        let overnight = window(22, 6, vec![]);

        let inside = utc(2026, 6, 10, 23, 0);
        let after = utc(2026, 6, 11, 5, 0);

        assert_eq!(next_opening(Berlin, &overnight, inside), Some(inside));
        assert_eq!(
            next_opening(Berlin, &overnight, after),
            Some(utc(2026, 6, 11, 20, 0))
        );
    }

    /// Finds the next opening by converting both ends of every candidate opening, with no
    /// shortcut.
    fn next_opening_plainly(
        zone: Tz,
        window: &LocalWindow,
        at: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let today = local_date(zone, at);
        let overnight = window.end <= window.start;
        let first_offset = if overnight { -1 } else { 0 };
        for offset in first_offset..=8 {
            let day = today + Duration::days(offset);
            if !window.days.is_empty() && !window.days.contains(&day.weekday()) {
                continue;
            }
            let end_day = day + Duration::days(i64::from(overnight));
            let close = to_instant(zone, end_day.and_time(window.end));
            if close > at {
                let open = to_instant(zone, day.and_time(window.start));
                return Some(open.max(at));
            }
        }
        None
    }

    #[test]
    fn opening_matches_plain_search_all_year() {
        let zones = [
            Berlin,
            New_York,
            chrono_tz::America::Santiago,
            chrono_tz::Australia::Lord_Howe,
            chrono_tz::Asia::Kolkata,
            chrono_tz::America::Havana,
        ];
        let local_time = |hour: u32, minute: u32| NaiveTime::from_hms_opt(hour, minute, 0).unwrap();
        let windows = [
            window(8, 20, vec![]),
            window(22, 6, vec![]),
            window(9, 17, vec![Weekday::Sun]),
            LocalWindow {
                start: local_time(0, 30),
                end: local_time(2, 30),
                days: vec![],
            },
            LocalWindow {
                start: local_time(1, 30),
                end: local_time(1, 15),
                days: vec![],
            },
        ];
        let first = utc(2025, 12, 25, 0, 0);
        for zone in zones {
            for window in &windows {
                // Every 53 minutes through 2026, which lands near every offset change.
                for step in 0..10_200 {
                    let at = first + Duration::minutes(53 * step);

                    let fast = next_opening(zone, window, at);

                    let plain = next_opening_plainly(zone, window, at);
                    assert_eq!(fast, plain, "{zone} {window:?} at {at}");
                }
            }
        }
    }

    #[test]
    fn opening_skips_excluded_days() {
        // Wednesday 2026-06-10; a Monday-only window next opens on 2026-06-15 at 09:00 local.
        let mondays = window(9, 17, vec![Weekday::Mon]);

        let next = next_opening(Berlin, &mondays, utc(2026, 6, 10, 10, 0));

        assert_eq!(next, Some(utc(2026, 6, 15, 7, 0)));
    }
}
