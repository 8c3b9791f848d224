//! The result type: one report per recipient of a returned message.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;

/// The outcome for one recipient, as a returned message reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// The address is permanently dead (unknown user, no such domain, mailbox closed or
    /// moved, null MX). Suppress it.
    HardBounce,
    /// This message failed but the address may work for the next one (block, full mailbox,
    /// too large, expired in the queue, network error, rate limit), or delivery is delayed.
    SoftBounce,
    /// The recipient reported the message as spam through a feedback loop, or asked to
    /// unsubscribe through the mail client.
    Complaint,
    /// An automatic reply such as a vacation or out-of-office notice. The address works.
    AutoReply,
    /// The recipient asked to unsubscribe by mail, through the `mailto:` of a
    /// `List-Unsubscribe` header whose subject is `unsubscribe-<token>`.
    /// [`Report::unsubscribe_token`] contains the token, which the caller verifies.
    Unsubscribe,
    /// The message is not returned mail (an ordinary message, a read receipt, a success
    /// notification), or it could not be recognised.
    NotReturned,
}

impl Class {
    /// Returns the snake_case name used in JSON output, such as `hard_bounce`.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::HardBounce => "hard_bounce",
            Class::SoftBounce => "soft_bounce",
            Class::Complaint => "complaint",
            Class::AutoReply => "auto_reply",
            Class::Unsubscribe => "unsubscribe",
            Class::NotReturned => "not_returned",
        }
    }
}

impl FromStr for Class {
    type Err = Error;

    /// Parses a snake_case class name such as `hard_bounce`.
    ///
    /// # Errors
    ///
    /// Returns [`Error::UnknownClass`] for any other text.
    fn from_str(name: &str) -> Result<Class, Error> {
        let classes = [
            Class::HardBounce,
            Class::SoftBounce,
            Class::Complaint,
            Class::AutoReply,
            Class::Unsubscribe,
            Class::NotReturned,
        ];
        classes
            .into_iter()
            .find(|class| class.as_str() == name)
            .ok_or_else(|| Error::UnknownClass {
                name: name.to_string(),
            })
    }
}

impl std::fmt::Display for Class {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// One recipient's outcome, read from one returned message.
///
/// Addresses are lowercased and carry no angle brackets or `rfc822;` prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The class of the outcome.
    pub class: Class,
    /// The recipient the outcome is about: `Final-Recipient` of a delivery status
    /// notification, `Original-Rcpt-To` of a feedback report, the sender of an auto-reply,
    /// or the address named in a plain-text bounce. `None` for [`Class::NotReturned`].
    pub recipient: Option<String>,
    /// The address the original message was sent to, when the returned message names one
    /// that can differ from `recipient`: `Original-Recipient`, or `X-Original-To` or `To` of
    /// the enclosed original message.
    pub original_recipient: Option<String>,
    /// The enhanced status code (RFC 3463), such as "5.1.1". A bounce that gives only a
    /// basic SMTP reply code gets the generic "5.0.0" or "4.0.0".
    pub status: Option<String>,
    /// A short reason on one line (at most 200 characters): the server's diagnostic, the
    /// feedback type or the auto-reply's subject.
    pub reason: String,
    /// The first `bounces+…@…` VERP address found in the returned message's headers or in
    /// the enclosed original, which maps the report back to its delivery.
    pub verp: Option<String>,
    /// The `Message-ID` of the original message (from the enclosed copy, or `In-Reply-To` of
    /// an auto-reply), without angle brackets.
    pub original_message_id: Option<String>,
    /// The token of a [`Class::Unsubscribe`] request, from its subject; `None` for every
    /// other class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsubscribe_token: Option<String>,
}

impl Report {
    /// Builds a [`Class::NotReturned`] report with no recipient.
    pub fn not_returned(reason: &str) -> Report {
        Report {
            class: Class::NotReturned,
            recipient: None,
            original_recipient: None,
            status: None,
            reason: crate::text::one_line(reason),
            verp: None,
            original_message_id: None,
            unsubscribe_token: None,
        }
    }
}

/// The shape of one line of `tact ingest-mail --dry-run --json`, with its fields in order.
#[derive(Serialize)]
struct JsonLine<'a> {
    class: Class,
    recipient: Option<&'a str>,
    status: Option<&'a str>,
    reason: &'a str,
    delivery: Option<i64>,
}

/// Formats one report as a single JSON object with the keys `class`, `recipient`, `status`,
/// `reason` and `delivery`, in that order and with no trailing newline.
///
/// `delivery` is the delivery id that the caller mapped the report to, or `None`.
pub fn to_json_line(report: &Report, delivery: Option<i64>) -> String {
    let line = JsonLine {
        class: report.class,
        recipient: report.recipient.as_deref(),
        status: report.status.as_deref(),
        reason: &report.reason,
        delivery,
    };
    // Serialising a struct of strings, numbers and a unit enum cannot fail.
    serde_json::to_string(&line).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_keeps_field_order() {
        let report = Report {
            class: Class::HardBounce,
            recipient: Some("kijitora@example.jp".into()),
            original_recipient: None,
            status: Some("5.1.1".into()),
            reason: "550 5.1.1 User unknown".into(),
            verp: None,
            original_message_id: None,
            unsubscribe_token: None,
        };
        let expected = r#"{"class":"hard_bounce","recipient":"kijitora@example.jp","status":"5.1.1","reason":"550 5.1.1 User unknown","delivery":17}"#;
        assert_eq!(to_json_line(&report, Some(17)), expected);
    }

    #[test]
    fn class_names_round_trip() {
        for name in [
            "hard_bounce",
            "soft_bounce",
            "complaint",
            "auto_reply",
            "unsubscribe",
            "not_returned",
        ] {
            let class: Class = name.parse().unwrap();
            assert_eq!(class.as_str(), name);
            assert_eq!(
                serde_json::to_string(&class).unwrap(),
                format!("\"{name}\"")
            );
        }
    }

    #[test]
    fn unknown_class_name_is_rejected() {
        let error = "bounce".parse::<Class>().unwrap_err();
        assert_eq!(
            error,
            Error::UnknownClass {
                name: "bounce".into()
            }
        );
        assert!(
            error
                .to_string()
                .starts_with("unknown returned-mail class \"bounce\"")
        );
    }

    #[test]
    fn json_line_writes_nulls() {
        let report = Report::not_returned("ordinary message");
        let expected = r#"{"class":"not_returned","recipient":null,"status":null,"reason":"ordinary message","delivery":null}"#;
        assert_eq!(to_json_line(&report, None), expected);
    }
}
