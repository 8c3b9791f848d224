//! Automatic replies: vacation and out-of-office notices (RFC 3834 and common practice).

use crate::report::{Class, Report};
use crate::returned::Returned;
use crate::text::{clean_address, contains_any, one_line};

/// Subject words of vacation and out-of-office replies, lowercase, in several languages.
const SUBJECT_MARKERS: &[&str] = &[
    "out of office",
    "out of the office",
    "out-of-office",
    "automatic reply",
    "auto reply",
    "auto-reply",
    "autoreply",
    "auto response",
    "auto-response",
    "autoresponse",
    "vacation",
    "away from the office",
    "on leave",
    "abwesenheit",
    "abwesend",
    "automatische antwort",
    "réponse automatique",
    "reponse automatique",
    "absence",
    "absent du bureau",
    "risposta automatica",
    "fuori sede",
    "respuesta automática",
    "respuesta automatica",
    "fuera de la oficina",
    "resposta automática",
    "ausente",
    "automatisch antwoord",
    "afwezig",
    "autosvar",
    "automaattinen vastaus",
    "automatyczna odpowiedź",
    "不在",
    "自動応答",
    "自動返信",
    "自动回复",
];

/// Reads `returned` as an automatic reply, if its headers or subject say it is one.
///
/// The caller checks for delivery status notifications and bounces first, because those
/// carry `Auto-Submitted` too.
pub(crate) fn classify_auto_reply(returned: &Returned<'_>) -> Option<Report> {
    let marker = header_marker(returned).or_else(|| subject_marker(returned))?;
    let recipient = returned.from.clone();
    let original_message_id = returned.header("In-Reply-To").map(|id| {
        id.trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_string()
    });
    let reason = if returned.subject.is_empty() {
        marker
    } else {
        format!("{marker}: {}", returned.subject)
    };
    Some(Report {
        class: Class::AutoReply,
        recipient,
        original_recipient: returned
            .header("X-Original-To")
            .as_deref()
            .and_then(clean_address),
        status: None,
        reason: one_line(&reason),
        verp: returned.verp.clone(),
        original_message_id,
    })
}

fn header_marker(returned: &Returned<'_>) -> Option<String> {
    if let Some(value) = returned.header("Auto-Submitted") {
        let value = value.to_ascii_lowercase();
        if value.starts_with("auto-replied") || value.starts_with("auto-generated") {
            return Some(format!("Auto-Submitted: {value}"));
        }
    }
    for name in ["X-Autoreply", "X-Autorespond", "X-Autoresponder"] {
        if returned.header(name).is_some() {
            return Some(format!("{name} header"));
        }
    }
    let precedence = returned.header("Precedence").unwrap_or_default();
    if precedence.eq_ignore_ascii_case("auto_reply") {
        return Some("Precedence: auto_reply".to_string());
    }
    None
}

fn subject_marker(returned: &Returned<'_>) -> Option<String> {
    let subject = returned.subject.to_lowercase();
    let begins_auto = subject.starts_with("auto:") || subject.starts_with("automatic:");
    (begins_auto || contains_any(&subject, SUBJECT_MARKERS))
        .then(|| "automatic reply subject".to_string())
}
