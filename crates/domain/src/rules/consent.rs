//! Opt-outs and pauses the customer asked for.

use chrono::{DateTime, Utc};

use super::limits::stamp;
use super::{Context, Verdict};
use crate::ConsentMark;

/// Denies every contact while do-not-contact is set.
pub(crate) fn do_not_contact(context: &Context<'_>, _at: DateTime<Utc>) -> Verdict {
    match context.view.preferences.do_not_contact {
        Some(mark) => Verdict::Deny(format!("do-not-contact was set on {}", day(mark))),
        None => Verdict::Allow,
    }
}

/// Denies sales, value and survey contacts after a marketing opt-out.
pub(crate) fn marketing_opt_out(context: &Context<'_>, _at: DateTime<Utc>) -> Verdict {
    let purpose = context.proposal.purpose;
    match context.view.preferences.marketing_opt_out {
        Some(mark) if purpose.is_marketing() => Verdict::Deny(format!(
            "the customer opted out of marketing on {}, which covers {purpose} contacts",
            day(mark)
        )),
        _ => Verdict::Allow,
    }
}

/// Denies contact on a channel the customer opted out of.
pub(crate) fn channel_opt_out(context: &Context<'_>, _at: DateTime<Utc>) -> Verdict {
    let channel = &context.proposal.channel;
    match context.view.preferences.channel_opt_outs.get(channel) {
        Some(mark) => Verdict::Deny(format!(
            "the customer opted out of {channel} contact on {}",
            day(*mark)
        )),
        None => Verdict::Allow,
    }
}

/// Denies contact about a topic the customer opted out of.
pub(crate) fn topic_opt_out(context: &Context<'_>, _at: DateTime<Utc>) -> Verdict {
    let Some(topic) = &context.proposal.topic else {
        return Verdict::Allow;
    };
    match context.view.preferences.topic_opt_outs.get(topic) {
        Some(mark) => Verdict::Deny(format!(
            "the customer opted out of the topic {topic} on {}",
            day(*mark)
        )),
        None => Verdict::Allow,
    }
}

/// Defers contact to the end of a pause.
pub(crate) fn paused(context: &Context<'_>, at: DateTime<Utc>) -> Verdict {
    match context.view.preferences.paused_until {
        Some(end) if end > at => Verdict::Defer {
            until: end,
            message: context.say(|| format!("contact is paused until {}", stamp(end))),
        },
        _ => Verdict::Allow,
    }
}

fn day(mark: ConsentMark) -> String {
    mark.at.format("%Y-%m-%d").to_string()
}
