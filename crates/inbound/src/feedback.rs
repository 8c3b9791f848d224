//! Feedback-loop complaints: ARF reports (RFC 5965), Microsoft's older JMRP reports and
//! Apple Mail's unsubscribe requests.

use crate::fields::{field, parse_groups};
use crate::report::{Class, Report};
use crate::returned::Returned;
use crate::text::{clean_address, lossy, one_line, prefix};

/// Feedback types that mean the recipient objected to the message. `not-spam` and
/// `auth-failure` (a sender authentication failure, not the recipient's wish) are left out.
const COMPLAINT_TYPES: &[&str] = &["abuse", "fraud", "virus", "other", "opt-out", "unsubscribe"];

/// Reads a feedback report from `returned`, if it is one.
pub(crate) fn classify_feedback(returned: &Returned<'_>) -> Option<Report> {
    if let Some(report) = classify_arf(returned) {
        return Some(report);
    }
    classify_jmrp(returned).or_else(|| classify_apple_unsubscribe(returned))
}

fn classify_arf(returned: &Returned<'_>) -> Option<Report> {
    let parts = returned.parts_of_type(&["message/feedback-report"]);
    let is_arf = returned.report_type.as_deref() == Some("feedback-report");
    if parts.is_empty() && !is_arf {
        return None;
    }
    let fields = parts
        .first()
        .map(|part| parse_groups(prefix(&lossy(part.contents()), 64 * 1024)).concat())
        .unwrap_or_default();
    let feedback_type = field(&fields, "feedback-type")
        .unwrap_or("abuse")
        .to_ascii_lowercase();
    if !COMPLAINT_TYPES.contains(&feedback_type.as_str()) {
        return Some(Report::not_returned(&format!(
            "feedback report of type {feedback_type}, which is no recipient complaint"
        )));
    }
    let recipient = field(&fields, "original-rcpt-to")
        .and_then(clean_address)
        .or_else(|| field(&fields, "removal-recipient").and_then(clean_address))
        .or_else(|| returned.original.to.clone())
        .or_else(|| returned.original.x_original_to.clone());
    Some(complaint(
        returned,
        recipient,
        &format!("feedback report: {feedback_type}"),
    ))
}

/// Microsoft's Junk Mail Reporting Program sends the original as `message/rfc822` with the
/// recipient in `X-HmXmrOriginalRecipient`, and a subject "complaint about message from …".
fn classify_jmrp(returned: &Returned<'_>) -> Option<Report> {
    let subject = returned.subject.to_ascii_lowercase();
    if !subject.starts_with("complaint about message from") {
        return None;
    }
    let recipient = returned
        .original
        .x_original_to
        .clone()
        .or_else(|| returned.original.to.clone());
    recipient.as_ref()?;
    Some(complaint(
        returned,
        recipient,
        "feedback report: abuse (Microsoft JMRP)",
    ))
}

/// Apple Mail's "unsubscribe" button sends a message with `X-Apple-Unsubscribe: true` from
/// the recipient's address. It is treated as a complaint so the address is not mailed again.
fn classify_apple_unsubscribe(returned: &Returned<'_>) -> Option<Report> {
    let flag = returned.header("X-Apple-Unsubscribe")?;
    if !flag.eq_ignore_ascii_case("true") {
        return None;
    }
    let reason = format!("unsubscribe request from Apple Mail: {}", returned.subject);
    Some(complaint(returned, returned.from.clone(), &reason))
}

fn complaint(returned: &Returned<'_>, recipient: Option<String>, reason: &str) -> Report {
    let original = &returned.original;
    Report {
        class: Class::Complaint,
        original_recipient: original
            .x_original_to
            .clone()
            .or_else(|| original.to.clone())
            .filter(|address| Some(address) != recipient.as_ref()),
        recipient,
        status: None,
        reason: one_line(reason),
        verp: returned.verp.clone(),
        original_message_id: original.message_id.clone(),
        unsubscribe_token: None,
    }
}
