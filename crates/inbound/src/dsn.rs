//! Delivery status notifications (RFC 3464): one report per failed or delayed recipient.

use crate::fields::{field, parse_groups};
use crate::report::Report;
use crate::returned::Returned;
use crate::severity::classify_failure;
use crate::text::{
    after_address, clean_address, diagnostic_lines, find_status_code, lossy, one_line,
    parse_status_at, prefix,
};

/// Content types of the machine-readable part of a DSN.
const STATUS_TYPES: &[&str] = &["message/delivery-status", "message/global-delivery-status"];

/// Reads the delivery-status part of `returned`, if it has one.
///
/// Returns `None` when there is no such part or it names no recipient, so the caller can try
/// the plain-text rules. A DSN whose recipients were all delivered, relayed or expanded
/// yields one [`Class::NotReturned`] report, because nothing failed.
pub(crate) fn classify_dsn(returned: &Returned<'_>) -> Option<Vec<Report>> {
    let mut reports = Vec::new();
    let mut succeeded = 0;
    let body = returned.body_text();
    let notification = Notification {
        text: prefix(&body, 64 * 1024),
        lower: prefix(&body, 64 * 1024).to_ascii_lowercase(),
    };
    let mut sources: Vec<String> = returned
        .parts_of_type(STATUS_TYPES)
        .iter()
        .map(|part| lossy(prefix_bytes(part.contents(), 1024 * 1024)).into_owned())
        .collect();
    // A report whose MIME boundaries are broken still carries its fields in the body text.
    if sources.is_empty() && returned.report_type.as_deref() == Some("delivery-status") {
        sources.push(body.clone());
    }
    for contents in &sources {
        for group in parse_groups(contents) {
            match recipient_report(returned, &group, &notification) {
                Some(Outcome::Failed(report)) => reports.push(report),
                Some(Outcome::Succeeded) => succeeded += 1,
                None => {}
            }
        }
    }
    if reports.is_empty() && succeeded > 0 {
        return Some(vec![Report::not_returned(
            "delivery status notification without a failed or delayed recipient",
        )]);
    }
    (!reports.is_empty()).then_some(reports)
}

/// The human-readable part of a DSN, with a lowercase copy whose byte offsets match.
struct Notification<'a> {
    text: &'a str,
    lower: String,
}

enum Outcome {
    Failed(Report),
    Succeeded,
}

fn prefix_bytes(bytes: &[u8], max: usize) -> &[u8] {
    &bytes[..bytes.len().min(max)]
}

fn recipient_report(
    returned: &Returned<'_>,
    group: &[(String, String)],
    notification: &Notification<'_>,
) -> Option<Outcome> {
    let final_recipient = field(group, "final-recipient").and_then(clean_address);
    let original_recipient = field(group, "original-recipient").and_then(clean_address);
    let recipient = final_recipient
        .clone()
        .or_else(|| field(group, "x-actual-recipient").and_then(clean_address))
        .or_else(|| original_recipient.clone())?;

    let action = field(group, "action")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let success_status = field(group, "status").is_some_and(|status| status.starts_with("2."));
    let success_action = ["delivered", "relayed", "expanded", "deliverable"]
        .iter()
        .any(|word| action.starts_with(word));
    if success_action || success_status {
        return Some(Outcome::Succeeded);
    }
    let delayed = action.starts_with("delayed");

    let diagnostic = field(group, "diagnostic-code")
        .map(strip_type)
        .unwrap_or_default()
        .to_string();
    let status = pick_status(field(group, "status"), &diagnostic);
    let evidence = if diagnostic.is_empty() {
        notice_about(notification, &recipient)
    } else {
        &diagnostic
    };
    let class = classify_failure(status.as_deref(), evidence, delayed);
    let reason = if !diagnostic.is_empty() {
        one_line(&diagnostic)
    } else if let Some(lines) = diagnostic_lines(evidence) {
        one_line(lines)
    } else {
        let explanation = after_address(evidence, &recipient)
            .trim_start_matches(['>', ':', ';', ',', '.', ' ', '\r', '\n', '\t']);
        if explanation.trim().len() >= 10 {
            one_line(explanation)
        } else {
            describe_without_diagnostic(&action, status.as_deref())
        }
    };

    let original = &returned.original;
    Some(Outcome::Failed(Report {
        class,
        original_recipient: original_recipient
            .or_else(|| original.x_original_to.clone())
            .or_else(|| original.to.clone())
            .filter(|address| *address != recipient),
        recipient: Some(recipient),
        status,
        reason,
        verp: returned.verp.clone(),
        original_message_id: original.message_id.clone(),
        unsubscribe_token: None,
    }))
}

/// Returns the paragraph of the human-readable notification that names `recipient`, and the
/// next paragraph too when the first holds only the address (at most 1 KiB), or nothing when
/// the notification does not name it. A DSN without `Diagnostic-Code` often explains the
/// failure only there.
fn notice_about<'a>(notification: &Notification<'a>, recipient: &str) -> &'a str {
    let Some(position) = notification.lower.find(recipient) else {
        return "";
    };
    let notification = notification.text;
    let start = notification[..position].rfind('\n').map_or(0, |p| p + 1);
    let rest = prefix(&notification[start..], 1024);
    let paragraph_end = |from: usize| {
        rest[from..]
            .find("\n\n")
            .or_else(|| rest[from..].find("\n\r\n"))
            .map_or(rest.len(), |offset| from + offset)
    };
    let first_end = paragraph_end(0);
    let only_address = rest[..first_end]
        .trim()
        .trim_matches(|c| c == '<' || c == '>')
        .eq_ignore_ascii_case(recipient);
    if only_address && first_end < rest.len() {
        let next_start = first_end + rest[first_end..].len() - rest[first_end..].trim_start().len();
        return &rest[..paragraph_end(next_start)];
    }
    &rest[..first_end]
}

/// Chooses the enhanced status code: the `Status` field, unless it is a generic `X.0.0` and
/// the diagnostic carries a more specific code of the same class (many servers write
/// `Status: 5.0.0` with `550 5.1.1 user unknown`).
fn pick_status(status_field: Option<&str>, diagnostic: &str) -> Option<String> {
    let from_field = status_field.and_then(|value| parse_status_at(value.trim()));
    let from_diagnostic = find_status_code(diagnostic);
    match (from_field, from_diagnostic) {
        (Some(field_code), Some(specific))
            if field_code.ends_with(".0.0") && specific.starts_with(&field_code[..1]) =>
        {
            Some(specific)
        }
        (Some(field_code), _) => Some(field_code),
        (None, specific) => specific,
    }
}

/// Removes the `smtp;` or `x-unix;` diagnostic type in front of the text.
fn strip_type(value: &str) -> &str {
    match value.split_once(';') {
        Some((kind, rest)) if !kind.contains(' ') && kind.len() < 16 => rest.trim(),
        _ => value.trim(),
    }
}

fn describe_without_diagnostic(action: &str, status: Option<&str>) -> String {
    let action = if action.is_empty() { "failed" } else { action };
    match status {
        Some(code) => format!("delivery {action} with status {code}"),
        None => format!("delivery {action}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_status_yields_to_diagnostic() {
        let picked = pick_status(Some("5.0.0"), "550 5.1.1 <a@example.jp>... User unknown");
        assert_eq!(picked, Some("5.1.1".into()));
    }

    #[test]
    fn specific_status_wins_over_diagnostic() {
        let picked = pick_status(Some("5.2.2 (mailbox full)"), "550 5.1.1 something");
        assert_eq!(picked, Some("5.2.2".into()));
    }

    #[test]
    fn diagnostic_type_is_removed() {
        assert_eq!(strip_type("smtp; 550 unknown"), "550 unknown");
        assert_eq!(strip_type("550 no type: here; x"), "550 no type: here; x");
    }
}
