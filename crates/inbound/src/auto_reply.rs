//! Automatic replies: vacation and out-of-office notices (RFC 3834 and common practice).

use crate::report::{Class, Report};
use crate::returned::Returned;
use crate::text::{contains_any, one_line};

/// Subject phrases of vacation and out-of-office replies, lowercase, in several languages.
/// Single words such as "vacation" are left out, because customers use them in ordinary
/// replies.
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
    "vacation reply",
    "vacation notice",
    "away from the office",
    "abwesenheitsnotiz",
    "automatische antwort",
    "réponse automatique",
    "reponse automatique",
    "absent du bureau",
    "absence du bureau",
    "risposta automatica",
    "fuori sede",
    "respuesta automática",
    "respuesta automatica",
    "fuera de la oficina",
    "resposta automática",
    "automatisch antwoord",
    "afwezigheidsbericht",
    "autosvar",
    "automaattinen vastaus",
    "automatyczna odpowiedź",
    "不在",
    "自動応答",
    "自動返信",
    "自动回复",
];

/// Reads `returned` as an automatic reply, if its headers or subject mark it as one.
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
        // The reply's own X-Original-To names the mailbox that received the reply, not
        // the customer, so no original recipient is given.
        original_recipient: None,
        status: None,
        reason: one_line(&reason),
        verp: returned.verp.clone(),
        original_message_id,
        unsubscribe_token: None,
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

#[cfg(test)]
mod tests {
    use crate::{Class, classify};

    fn classify_subject(subject: &str, extra_header: &str) -> Class {
        let raw = format!(
            "From: Kim <kim@example.org>\r\nTo: shop@example.com\r\n{extra_header}\
             Subject: {subject}\r\nIn-Reply-To: <m1@example.com>\r\n\r\nHello\r\n"
        );
        classify(raw.as_bytes())[0].class
    }

    #[test]
    fn german_subject_is_auto_reply() {
        let class = classify_subject("Abwesenheitsnotiz: Ihre Bestellung", "");
        assert_eq!(class, Class::AutoReply);
    }

    #[test]
    fn japanese_subject_is_auto_reply() {
        assert_eq!(
            classify_subject("=?UTF-8?B?6Ieq5YuV6L+U5L+h?=", ""),
            Class::AutoReply
        );
    }

    #[test]
    fn ordinary_reply_is_not_auto_reply() {
        let class = classify_subject("Re: your vacation offer", "");
        assert_eq!(class, Class::NotReturned);
    }

    #[test]
    fn precedence_header_is_auto_reply() {
        let class = classify_subject("Re: order", "Precedence: auto_reply\r\n");
        assert_eq!(class, Class::AutoReply);
    }

    #[test]
    fn auto_submitted_no_is_ordinary() {
        let class = classify_subject("Re: order", "Auto-Submitted: no\r\n");
        assert_eq!(class, Class::NotReturned);
    }

    #[test]
    fn auto_reply_names_sender_and_original() {
        let raw = b"From: Kim <Kim@Example.org>\r\nX-Original-To: shop@example.com\r\n\
Auto-Submitted: auto-replied\r\n\
Subject: Out of office\r\nIn-Reply-To: <m1@example.com>\r\n\r\nBack on Monday.\r\n";
        let reports = classify(raw);
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].recipient.as_deref(), Some("kim@example.org"));
        assert_eq!(reports[0].original_recipient, None);
        assert_eq!(
            reports[0].original_message_id.as_deref(),
            Some("m1@example.com")
        );
        assert_eq!(
            reports[0].reason,
            "Auto-Submitted: auto-replied: Out of office"
        );
    }
}
