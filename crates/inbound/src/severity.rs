//! The hard/soft rule: is the address itself dead, or did only this message fail?
//!
//! A hard bounce means the address is permanently dead: unknown user, no such domain,
//! mailbox closed, disabled or moved, or a host that accepts no mail (null MX). Every other
//! failure is soft, even with a 5.x.x code, because the next message may get through. Soft
//! failures include policy and spam blocks, content rejections, a full mailbox, a message
//! that is too large, expiry in the queue, greylisting, network errors and rate limits.
//!
//! The enhanced status code alone is not enough, because many servers put 5.0.0 or 5.1.1
//! on blocks, or send no code at all, so the diagnostic text is read as well.

use crate::report::Class;
use crate::text::contains_any;

/// Phrases that show the failure was about this message or the sender, not the address.
/// Checked first, because servers often pair them with 5.1.1 or 5.0.0.
const SOFT_PHRASES: &[&str] = &[
    "spam",
    "blocked",
    "blacklist",
    "black list",
    "blocklist",
    "block list",
    "denylist",
    "listed at",
    "listed in",
    "rbl",
    "spamhaus",
    "policy",
    "policies",
    "reputation",
    "rate limit",
    "ratelimit",
    "rate-limit",
    "too many",
    "try again",
    "try later",
    "temporar",
    "quota",
    "mailbox full",
    "mailbox is full",
    "mailbox was full",
    "mailfolder is full",
    "storage",
    "insufficient",
    "over the limit",
    "exceeds",
    "exceeded",
    "too large",
    "too big",
    "size limit",
    "message size",
    "greylist",
    "graylist",
    "timed out",
    "timeout",
    "connection refused",
    "connection reset",
    "retry timeout",
    "expired",
    "virus",
    "malware",
    "content rejected",
    "not accepted for policy",
    "sender rejected",
    "sender address rejected",
    "after mail from",
    "relay access denied",
    "relaying denied",
    "relay not permitted",
    "not permitted to relay",
    "authentication",
    "spf",
    "dmarc",
    "dkim",
    "reverse dns",
    "ptr record",
    "helo",
];

/// Phrases that mean the address does not exist or can never receive mail.
const HARD_PHRASES: &[&str] = &[
    "user unknown",
    "unknown user",
    "unknown recipient",
    "recipient unknown",
    "unknown address",
    "address unknown",
    "unknown e-mail address",
    "unknown email address",
    "not recognized",
    "illegal user",
    "unknown local part",
    "unknown mailbox",
    "no such user",
    "no such recipient",
    "no such mailbox",
    "no such address",
    "no such person",
    "no such domain",
    "no mailbox",
    "no mail box",
    "mailbox unavailable",
    "mailbox not found",
    "mailbox does not exist",
    "does not exist",
    "doesn't exist",
    "did not exist",
    "not exist",
    "user not found",
    "recipient not found",
    "address not found",
    "not a valid mailbox",
    "invalid mailbox",
    "invalid recipient",
    "invalid address",
    "recipient address rejected: user",
    "not our customer",
    "no longer available",
    "no longer active",
    "is not active",
    "inactive",
    "deactivated",
    "account has been disabled",
    "account is disabled",
    "account disabled",
    "mailbox disabled",
    "mailbox is disabled",
    "account closed",
    "account has been closed",
    "mailbox closed",
    "mailbox has been closed",
    "account is unavailable",
    "unrouteable address",
    "unroutable address",
    "host not found",
    "host unknown",
    "unknown host",
    "couldn't be found",
    "could not be found",
    "wasn't found",
    "was not found",
    "domain not found",
    "domain name not found",
    "host or domain name not found",
    "name or service not known",
    "nxdomain",
    "null mx",
    "does not accept mail",
    "accepts no mail",
    "domain does not accept",
    "doesn't have a",
    "does not have a",
    "user doesn't have",
    "moved",
];

/// Enhanced status codes that by themselves mean the address is dead.
const HARD_CODES: &[&str] = &[
    "5.1.0", "5.1.1", "5.1.2", "5.1.3", "5.1.6", "5.1.10", "5.2.1", "5.4.4",
];

/// Enhanced status codes about the sender, the message or the network, never the
/// recipient's address: bad sender address (5.1.7, 5.1.8), full mailbox (5.2.2), message too
/// large (5.2.3, 5.3.4), routing loop (5.4.6) and expiry (5.4.7).
const SOFT_CODES: &[&str] = &[
    "5.1.7", "5.1.8", "5.2.2", "5.2.3", "5.3.4", "5.4.6", "5.4.7",
];

/// Decides hard or soft for one failed recipient.
///
/// `status` is an enhanced status code such as "5.1.1" when one is known, `diagnostic` is the
/// server's text, and `delayed` is true for `Action: delayed`, which is never hard because
/// the message is still queued.
pub(crate) fn classify_failure(status: Option<&str>, diagnostic: &str, delayed: bool) -> Class {
    if delayed || status.is_some_and(|code| code.starts_with('4')) {
        return Class::SoftBounce;
    }
    if status.is_some_and(|code| SOFT_CODES.contains(&code)) {
        return Class::SoftBounce;
    }
    let text = diagnostic.to_lowercase();
    if contains_any(&text, SOFT_PHRASES) && !names_unknown_user(&text) {
        return Class::SoftBounce;
    }
    if status.is_some_and(|code| HARD_CODES.contains(&code)) {
        return Class::HardBounce;
    }
    if status.is_some_and(|code| code.starts_with("5.7") || code.starts_with("5.3"))
        && !names_unknown_user(&text)
    {
        return Class::SoftBounce;
    }
    if contains_any(&text, HARD_PHRASES) {
        return Class::HardBounce;
    }
    Class::SoftBounce
}

/// Returns true when the text names the address as unknown in so many words, which outweighs
/// soft words that some servers append (such as "please try again" after "user unknown").
fn names_unknown_user(text: &str) -> bool {
    contains_any(
        text,
        &[
            "user unknown",
            "unknown user",
            "no such user",
            "no such mailbox",
            "does not exist",
            "doesn't exist",
            "mailbox not found",
            "unknown e-mail address",
            "unknown email address",
            "invalid recipient",
            "unknown recipient",
            "address couldn't be found",
            "address could not be found",
            "address wasn't found",
            "recipient unknown",
        ],
    ) && !contains_any(
        text,
        &["spam", "blocked", "policy", "blacklist", "quota", "full"],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_user_code_is_hard() {
        let class = classify_failure(
            Some("5.1.1"),
            "550 5.1.1 <a@example.org>: User unknown",
            false,
        );
        assert_eq!(class, Class::HardBounce);
    }

    #[test]
    fn null_mx_code_is_hard() {
        assert_eq!(
            classify_failure(Some("5.1.10"), "", false),
            Class::HardBounce
        );
    }

    #[test]
    fn block_with_unknown_code_is_soft() {
        let class = classify_failure(Some("5.1.1"), "550 5.1.1 Message blocked as spam", false);
        assert_eq!(class, Class::SoftBounce);
    }

    #[test]
    fn full_mailbox_is_soft() {
        let class = classify_failure(Some("5.2.2"), "552 5.2.2 Mailbox full", false);
        assert_eq!(class, Class::SoftBounce);
    }

    #[test]
    fn policy_code_is_soft() {
        assert_eq!(
            classify_failure(Some("5.7.1"), "rejected", false),
            Class::SoftBounce
        );
    }

    #[test]
    fn generic_code_reads_text() {
        let hard = classify_failure(Some("5.0.0"), "550 No such user here", false);
        let soft = classify_failure(Some("5.0.0"), "550 Service unavailable", false);
        assert_eq!(hard, Class::HardBounce);
        assert_eq!(soft, Class::SoftBounce);
    }

    #[test]
    fn delayed_action_is_soft() {
        assert_eq!(
            classify_failure(Some("5.1.1"), "user unknown", true),
            Class::SoftBounce
        );
        assert_eq!(
            classify_failure(Some("4.4.7"), "", false),
            Class::SoftBounce
        );
    }

    #[test]
    fn text_without_code_is_read() {
        let class = classify_failure(None, "The account has been disabled", false);
        assert_eq!(class, Class::HardBounce);
    }
}
