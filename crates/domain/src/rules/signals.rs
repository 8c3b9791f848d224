//! Reading the customer's reactions: negative signals back contact off and, when repeated,
//! lower the bucket; a run of ignored emails lowers it too.

use chrono::{DateTime, Utc};

use super::limits::stamp;
use super::{Context, Verdict};
use crate::{Channel, Contact, Purpose, Signal, SignalKind};

/// Defers non-transactional contact until `negative.backoff` after the latest complaint or
/// negative reply.
pub(crate) fn negative_backoff(context: &Context<'_>, at: DateTime<Utc>) -> Verdict {
    if !context.any_negative() {
        return Verdict::Allow;
    }
    let latest = context
        .view
        .signals
        .iter()
        .rev()
        .find(|signal| signal.kind.is_negative());
    let Some(signal) = latest else {
        return Verdict::Allow;
    };
    let backoff = context.policy.negative.backoff;
    let until = signal.at + backoff.duration();
    if until <= at {
        return Verdict::Allow;
    }
    Verdict::Defer {
        until,
        message: context.say(|| {
            format!(
                "a {} signal at {} backs contact off for {backoff}",
                signal.kind.as_str(),
                stamp(signal.at)
            )
        }),
    }
}

/// Bucket steps lost to negative signals at `at`: none below `negative.repeats_to_lower`
/// signals within `negative.window`, one at that many, one more for each further signal.
/// A `repeats_to_lower` of 0 turns the lowering off.
pub(crate) fn negative_steps(context: &Context<'_>, at: DateTime<Utc>) -> usize {
    let repeats = context.policy.negative.repeats_to_lower as usize;
    if repeats == 0 || !context.any_negative() {
        return 0;
    }
    let cutoff = at - context.policy.negative.window.duration();
    let recent = negatives(context)
        .filter(|signal| signal.at > cutoff)
        .count();
    (recent + 1).saturating_sub(repeats)
}

/// Finds the first instant after `at` at which a negative signal leaves the repeat window, which is
/// when the bucket lowering can next change.
pub(crate) fn next_negative_expiry(
    context: &Context<'_>,
    at: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if context.policy.negative.repeats_to_lower == 0 || !context.any_negative() {
        return None;
    }
    let window = context.policy.negative.window.duration();
    negatives(context)
        .map(|signal| signal.at + window)
        .find(|expiry| *expiry > at)
}

fn negatives<'a>(context: &'a Context<'_>) -> impl Iterator<Item = &'a Signal> + 'a {
    context
        .view
        .signals
        .iter()
        .filter(|signal| signal.kind.is_negative())
}

/// Measures the run of non-transactional emails since the latest human engagement,
/// when it is at least `ignored.emails` long (0 turns the rule off).
///
/// Opens, clicks and replies count as engagement unless a machine made them: a signal
/// marked `machine`, or an open within `machine_open_within` of the latest email sent
/// before it, which is how mail-privacy proxies fetch messages on arrival.
pub(crate) fn ignored_run(context: &Context<'_>) -> Option<usize> {
    let needed = context.policy.ignored.emails as usize;
    if needed == 0 {
        return None;
    }
    let engaged = context
        .view
        .signals
        .iter()
        .rev()
        .find(|signal| is_human_engagement(context, signal))
        .map(|signal| signal.at);
    let run = context
        .view
        .contacts
        .iter()
        .rev()
        .filter(|contact| is_marketing_email(contact))
        .take_while(|contact| engaged.is_none_or(|time| contact.at > time))
        .take(needed)
        .count();
    (run >= needed).then_some(run)
}

fn is_marketing_email(contact: &Contact) -> bool {
    contact.channel == Channel::EMAIL
        && contact.purpose != Purpose::Transactional
        && contact.outcome.counts()
}

fn is_human_engagement(context: &Context<'_>, signal: &Signal) -> bool {
    match signal.kind {
        SignalKind::Clicked | SignalKind::Replied => !signal.machine,
        SignalKind::Opened => !signal.machine && !is_prefetch(context, signal),
        _ => false,
    }
}

/// Tells whether an open came so soon after the latest email sent before it that no person read it.
fn is_prefetch(context: &Context<'_>, open: &Signal) -> bool {
    let contacts = &context.view.contacts;
    let before = contacts.partition_point(|contact| contact.at <= open.at);
    let delivered = contacts[..before]
        .iter()
        .rev()
        .find(|contact| contact.channel == Channel::EMAIL);
    let within = context.policy.machine_open_within.duration();
    delivered.is_some_and(|contact| open.at - contact.at <= within)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{contact, proposal, utc, view};
    use crate::{CustomerView, Policy};
    use chrono::Duration;

    fn email_run(days: &[u32]) -> CustomerView {
        let mut customer = view();
        for day in days {
            let at = utc(2026, 5, *day, 9, 0);
            customer
                .contacts
                .push(contact(Channel::EMAIL, Purpose::Value, at));
        }
        customer
    }

    fn run_of(customer: &CustomerView) -> Option<usize> {
        let policy = Policy::default();
        let value = proposal(Channel::EMAIL, Purpose::Value);
        let context = Context::new(&value, customer, &policy);
        ignored_run(&context)
    }

    #[test]
    fn five_ignored_emails_count() {
        assert_eq!(run_of(&email_run(&[1, 5, 10, 15, 20])), Some(5));
        assert_eq!(run_of(&email_run(&[5, 10, 15, 20])), None);
    }

    #[test]
    fn human_click_breaks_run() {
        let mut customer = email_run(&[1, 5, 10, 15, 20]);
        customer
            .signals
            .push(Signal::new(SignalKind::Clicked, utc(2026, 5, 6, 12, 0)));

        assert_eq!(run_of(&customer), None);
    }

    #[test]
    fn machine_open_keeps_run() {
        let mut customer = email_run(&[1, 5, 10, 15, 20]);
        let mut proxy = Signal::new(SignalKind::Opened, utc(2026, 5, 20, 12, 0));
        proxy.machine = true;
        customer.signals.push(proxy);

        assert_eq!(run_of(&customer), Some(5));
    }

    #[test]
    fn instant_open_is_machine() {
        // Opened 10 seconds after the 20th's email: a prefetch. 11 seconds: a person.
        let sent = utc(2026, 5, 20, 9, 0);
        let mut prefetched = email_run(&[1, 5, 10, 15, 20]);
        prefetched.signals.push(Signal::new(
            SignalKind::Opened,
            sent + Duration::seconds(10),
        ));
        let mut read = email_run(&[1, 5, 10, 15, 20]);
        read.signals.push(Signal::new(
            SignalKind::Opened,
            sent + Duration::seconds(11),
        ));

        assert_eq!(run_of(&prefetched), Some(5));
        assert_eq!(run_of(&read), None);
    }

    #[test]
    fn negative_backoff_defers_thirty_days() {
        let complained = utc(2026, 5, 20, 9, 0);
        let mut customer = view();
        customer
            .signals
            .push(Signal::new(SignalKind::Complaint, complained));
        let policy = Policy::default();
        let value = proposal(Channel::EMAIL, Purpose::Value);
        let now = utc(2026, 6, 1, 0, 0);
        let context = Context::new(&value, &customer, &policy);

        let result = negative_backoff(&context, now);

        let message = "a complaint signal at 2026-05-20T09:00:00Z backs contact off for 30 days";
        assert_eq!(
            result,
            Verdict::Defer {
                until: complained + Duration::days(30),
                message: message.to_owned()
            }
        );
    }

    #[test]
    fn negative_repeats_lower_steps() {
        let mut customer = view();
        for day in [1, 5, 9] {
            customer.signals.push(Signal::new(
                SignalKind::NegativeTone,
                utc(2026, 5, day, 9, 0),
            ));
        }
        let policy = Policy::default();
        let value = proposal(Channel::EMAIL, Purpose::Value);
        let now = utc(2026, 6, 1, 0, 0);
        let context = Context::new(&value, &customer, &policy);

        assert_eq!(negative_steps(&context, now), 2);
        assert_eq!(negative_steps(&context, utc(2026, 10, 29, 0, 0)), 1);
        assert_eq!(negative_steps(&context, utc(2026, 11, 10, 0, 0)), 0);
    }
}
