//! Amazon SES event notifications delivered by e-mail through SNS: a JSON document in the
//! body with `notificationType` `Bounce`, `Complaint` or `Delivery`.
//!
//! The JSON is read by key scanning rather than a full parse, because SNS mail bodies are
//! often cut short (`headersTruncated`) or quoted inside another JSON string.

use crate::report::{Class, Report};
use crate::returned::Returned;
use crate::severity::classify_failure;
use crate::text::{clean_address, one_line, prefix};

/// Reads `returned` as an SES notification, if its body is one.
pub(crate) fn classify_ses(returned: &Returned<'_>) -> Option<Vec<Report>> {
    let body = returned.body_text();
    let body = prefix(&body, 256 * 1024).replace("\\\"", "\"");
    let kind = string_value(&body, "notificationType")?;
    match kind.as_str() {
        "Bounce" => Some(bounces(returned, &body)),
        "Complaint" => Some(complaints(returned, &body)),
        "Delivery" => Some(vec![Report::not_returned(
            "Amazon SES delivery notification",
        )]),
        _ => None,
    }
}

fn bounces(returned: &Returned<'_>, body: &str) -> Vec<Report> {
    let permanent = string_value(body, "bounceType").as_deref() == Some("Permanent");
    let mut reports = Vec::new();
    for object in list_objects(body, "bouncedRecipients") {
        let Some(recipient) = string_value(object, "emailAddress").and_then(|a| clean_address(&a))
        else {
            continue;
        };
        let status = string_value(object, "status");
        let diagnostic = string_value(object, "diagnosticCode").unwrap_or_default();
        let diagnostic = diagnostic.trim_start_matches("smtp;").trim().to_string();
        let class = classify_failure(status.as_deref(), &diagnostic, !permanent);
        let reason = if diagnostic.is_empty() {
            format!(
                "Amazon SES bounce: {}",
                if permanent { "Permanent" } else { "Transient" }
            )
        } else {
            diagnostic
        };
        reports.push(ses_report(returned, class, recipient, status, &reason));
    }
    if reports.is_empty() {
        reports.push(Report::not_returned(
            "Amazon SES bounce notification without recipients",
        ));
    }
    reports
}

fn complaints(returned: &Returned<'_>, body: &str) -> Vec<Report> {
    let feedback_type = string_value(body, "complaintFeedbackType").unwrap_or("abuse".into());
    if feedback_type == "not-spam" {
        return vec![Report::not_returned("Amazon SES not-spam feedback")];
    }
    let reason = format!("Amazon SES complaint: {feedback_type}");
    let reports: Vec<Report> = list_objects(body, "complainedRecipients")
        .into_iter()
        .filter_map(|object| string_value(object, "emailAddress"))
        .filter_map(|address| clean_address(&address))
        .map(|recipient| ses_report(returned, Class::Complaint, recipient, None, &reason))
        .collect();
    if reports.is_empty() {
        return vec![Report::not_returned(
            "Amazon SES complaint without recipients",
        )];
    }
    reports
}

fn ses_report(
    returned: &Returned<'_>,
    class: Class,
    recipient: String,
    status: Option<String>,
    reason: &str,
) -> Report {
    Report {
        class,
        recipient: Some(recipient),
        original_recipient: None,
        status,
        reason: one_line(reason),
        verp: returned.verp.clone(),
        original_message_id: None,
        unsubscribe_token: None,
    }
}

/// Returns the string value of the first `"key":"value"` pair in `text`.
fn string_value(text: &str, key: &str) -> Option<String> {
    let needle = format!("\"{key}\":\"");
    let start = text.find(&needle)? + needle.len();
    let end = text[start..].find('"')? + start;
    Some(text[start..end].to_string())
}

/// Returns the text of each `{…}` object in the array `"key":[…]`, without nesting.
fn list_objects<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    let needle = format!("\"{key}\":[");
    let Some(start) = text.find(&needle).map(|position| position + needle.len()) else {
        return Vec::new();
    };
    let end = text[start..]
        .find(']')
        .map_or(text.len(), |offset| start + offset);
    text[start..end]
        .split('}')
        .filter(|object| object.contains('{'))
        .collect()
}
