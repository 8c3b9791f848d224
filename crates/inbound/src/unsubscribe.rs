//! Unsubscribe requests by mail: the `mailto:` of a `List-Unsubscribe` header.
//!
//! tact's messages offer `mailto:<address>?subject=unsubscribe-<token>` beside the one-click
//! link. A mail client that uses it sends a message with that subject from the recipient's
//! address. The token is signed, so the caller checks it and takes the customer from it
//! rather than from the sender, which anyone can forge.

use crate::report::{Class, Report};
use crate::returned::Returned;
use crate::text::one_line;

/// The subject's prefix before the token.
const PREFIX: &str = "unsubscribe-";

/// The maximum token length accepted. tact's tokens have 46 characters, and the bound keeps
/// a long subject out of the report.
const MAX_TOKEN_LEN: usize = 128;

/// The reply and forward markers that mail clients put before a subject: English, German
/// (`AW:`, `WG:`), Dutch (`Antw:`) and Scandinavian (`SV:`) ones.
const REPLY_MARKERS: [&str; 7] = ["re:", "fwd:", "fw:", "aw:", "wg:", "antw:", "sv:"];

/// Reports a message whose subject is `unsubscribe-<token>`, ignoring case, leading reply
/// and forward markers ([`REPLY_MARKERS`]) and surrounding spaces. The token is URL-safe
/// base64.
pub(crate) fn classify_mailto_unsubscribe(returned: &Returned<'_>) -> Option<Report> {
    let token = subject_token(&returned.subject)?;
    Some(Report {
        class: Class::Unsubscribe,
        recipient: returned.from.clone(),
        original_recipient: None,
        status: None,
        reason: one_line("unsubscribe request by mail"),
        verp: returned.verp.clone(),
        original_message_id: None,
        unsubscribe_token: Some(token.to_owned()),
    })
}

fn subject_token(subject: &str) -> Option<&str> {
    let mut rest = subject.trim();
    // A client may reply or forward rather than open the mailto link.
    while let Some(marker) = REPLY_MARKERS.iter().find(|marker| {
        rest.get(..marker.len())
            .is_some_and(|start| start.eq_ignore_ascii_case(marker))
    }) {
        rest = rest[marker.len()..].trim_start();
    }
    let head = rest.get(..PREFIX.len())?;
    if !head.eq_ignore_ascii_case(PREFIX) {
        return None;
    }
    let token = &rest[PREFIX.len()..];
    let valid = !token.is_empty()
        && token.len() <= MAX_TOKEN_LEN
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    valid.then_some(token)
}

#[cfg(test)]
mod tests {
    use super::subject_token;

    #[test]
    fn subject_token_reads_mailto_subjects() {
        let cases = [
            ("unsubscribe-AbC_12-x", Some("AbC_12-x")),
            ("  Unsubscribe-AbC  ", Some("AbC")),
            ("Re: unsubscribe-AbC", Some("AbC")),
            ("RE:Fwd: unsubscribe-AbC", Some("AbC")),
            ("FW: UNSUBSCRIBE-abc", Some("abc")),
            ("AW: unsubscribe-abc", Some("abc")),
            ("Antw:SV: WG: unsubscribe-abc", Some("abc")),
            ("Re unsubscribe-abc", None),
            ("unsubscribe-", None),
            ("unsubscribe", None),
            ("please unsubscribe-AbC", None),
            ("unsubscribe-AbC and more", None),
            ("unsubscribe-ab+c/", None),
            ("", None),
        ];
        for (subject, expected) in cases {
            assert_eq!(subject_token(subject), expected, "{subject:?}");
        }
    }

    #[test]
    fn subject_token_bounds_its_length() {
        let long = format!("unsubscribe-{}", "a".repeat(129));
        let longest = format!("unsubscribe-{}", "a".repeat(128));

        assert_eq!(subject_token(&long), None);
        assert_eq!(subject_token(&longest).map(str::len), Some(128));
    }
}
