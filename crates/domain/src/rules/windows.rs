//! Local contact hours: the customer's own window and the company's quiet hours.

use chrono::{DateTime, Utc};

use super::{Context, Verdict};
use crate::LocalWindow;
use crate::zone::next_opening;

/// Defers contact to the next opening of the customer's own contact window.
pub(crate) fn contact_window(context: &Context<'_>, at: DateTime<Utc>) -> Verdict {
    match &context.view.preferences.window {
        Some(window) => inside(context, window, at, "the customer's contact window"),
        None => Verdict::Allow,
    }
}

/// Defers contact to the next opening of the company's contact hours; outside them is
/// quiet time.
pub(crate) fn quiet_hours(context: &Context<'_>, at: DateTime<Utc>) -> Verdict {
    match &context.policy.quiet_hours {
        Some(window) => inside(context, window, at, "the company's contact hours"),
        None => Verdict::Allow,
    }
}

fn inside(context: &Context<'_>, window: &LocalWindow, at: DateTime<Utc>, name: &str) -> Verdict {
    let zone = context.zone;
    let local = || at.with_timezone(&zone).format("%a %H:%M");
    let hours = || {
        let start = window.start.format("%H:%M");
        format!("{start} to {}", window.end.format("%H:%M"))
    };
    match next_opening(zone, window, at) {
        Some(open) if open == at => Verdict::Allow,
        Some(open) => Verdict::Defer {
            until: open,
            message: context
                .say(|| format!("it is {} in {zone}, outside {name} of {}", local(), hours())),
        },
        None => context.deny(|| format!("{name} of {} has no open day", hours())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{proposal, utc, view, view_in};
    use crate::{Channel, Policy, Purpose};
    use chrono::NaiveTime;

    #[test]
    fn quiet_hours_defer_to_morning() {
        let customer = view();
        let policy = Policy::default();
        let value = proposal(Channel::EMAIL, Purpose::Value);
        let late = utc(2026, 6, 10, 19, 30);

        let result = quiet_hours(&Context::new(&value, &customer, &policy), late);

        let message = "it is Wed 21:30 in Europe/Berlin, outside the company's contact hours \
                       of 08:00 to 20:00";
        assert_eq!(
            result,
            Verdict::Defer {
                until: utc(2026, 6, 11, 6, 0),
                message: message.to_owned()
            }
        );
    }

    #[test]
    fn customer_window_across_fall_back() {
        // New York, Saturday 2026-10-31 23:00 local (03:00 UTC on Nov 1). A 09:00 window
        // opens on Sunday after the change, in standard time (UTC-5): 14:00 UTC.
        let mut customer = view_in(chrono_tz::America::New_York);
        customer.preferences.window = Some(LocalWindow {
            start: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(12, 0, 0).unwrap(),
            days: vec![],
        });
        let policy = Policy::default();
        let value = proposal(Channel::EMAIL, Purpose::Value);
        let at = utc(2026, 11, 1, 3, 0);

        let result = contact_window(&Context::new(&value, &customer, &policy), at);

        assert_eq!(result.until(), Some(utc(2026, 11, 1, 14, 0)));
    }

    #[test]
    fn weekday_window_waits_for_monday() {
        // Friday 2026-06-12 18:00 in Berlin; a Monday and Tuesday window of 10:00 to 12:00
        // next opens on Monday 2026-06-15 at 10:00 local, 08:00 UTC.
        let mut customer = view();
        customer.preferences.window = Some(LocalWindow {
            start: NaiveTime::from_hms_opt(10, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(12, 0, 0).unwrap(),
            days: vec![chrono::Weekday::Mon, chrono::Weekday::Tue],
        });
        let policy = Policy::default();
        let value = proposal(Channel::EMAIL, Purpose::Value);
        let friday = utc(2026, 6, 12, 16, 0);

        let result = contact_window(&Context::new(&value, &customer, &policy), friday);

        let message = "it is Fri 18:00 in Europe/Berlin, outside the customer's contact window \
                       of 10:00 to 12:00";
        assert_eq!(
            result,
            Verdict::Defer {
                until: utc(2026, 6, 15, 8, 0),
                message: message.to_owned()
            }
        );
    }
}
