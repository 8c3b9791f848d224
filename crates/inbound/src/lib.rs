//! Classification of returned mail for tact.
//!
//! A mailer that ignores what comes back keeps mailing dead addresses and people who
//! complained. [`classify`] reads one raw returned message and returns one [`Report`] per
//! recipient it is about, with a [`Class`]:
//!
//! - delivery status notifications (RFC 3464) and the plain-text bounces of older servers
//!   and large providers become [`Class::HardBounce`] or [`Class::SoftBounce`];
//! - feedback-loop reports (ARF, RFC 5965) become [`Class::Complaint`];
//! - vacation and out-of-office replies (RFC 3834) become [`Class::AutoReply`];
//! - a message whose subject is `unsubscribe-<token>`, sent through the `mailto:` of a
//!   `List-Unsubscribe` header, becomes [`Class::Unsubscribe`] with its token;
//! - everything else, read receipts included, is [`Class::NotReturned`].
//!
//! The crate is pure: it does no I/O, reads no clock and stores nothing. Mapping a report
//! back to a delivery (through [`Report::verp`], [`Report::original_message_id`] or the
//! recipient) and turning it into signals and suppressions is the daemon's job.
//!
//! ```
//! let raw = b"From: MAILER-DAEMON@mx.example.org\r\n\
//! To: bounces+17-x1@mail.example.com\r\n\
//! Subject: Undelivered Mail Returned to Sender\r\n\
//! MIME-Version: 1.0\r\n\
//! Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\
//! \r\n\
//! --b\r\n\
//! Content-Type: text/plain\r\n\
//! \r\n\
//! Your message could not be delivered.\r\n\
//! --b\r\n\
//! Content-Type: message/delivery-status\r\n\
//! \r\n\
//! Reporting-MTA: dns; mx.example.org\r\n\
//! \r\n\
//! Final-Recipient: rfc822; kim@example.org\r\n\
//! Action: failed\r\n\
//! Status: 5.1.1\r\n\
//! Diagnostic-Code: smtp; 550 5.1.1 <kim@example.org>: User unknown\r\n\
//! --b--\r\n";
//!
//! let reports = tact_inbound::classify(raw);
//! assert_eq!(reports.len(), 1);
//! assert_eq!(reports[0].class, tact_inbound::Class::HardBounce);
//! assert_eq!(reports[0].recipient.as_deref(), Some("kim@example.org"));
//! assert_eq!(reports[0].status.as_deref(), Some("5.1.1"));
//! assert_eq!(reports[0].verp.as_deref(), Some("bounces+17-x1@mail.example.com"));
//! ```

#![warn(missing_docs)]

mod auto_reply;
mod dsn;
mod error;
mod feedback;
mod fields;
mod plain_bounce;
mod report;
mod returned;
mod ses;
mod severity;
mod text;
mod unsubscribe;

pub use error::Error;
pub use report::{Class, Report, to_json_line};

use mail_parser::MessageParser;

use returned::Returned;

/// Classifies one raw returned message into per-recipient reports.
///
/// The rules are tried in this order, and the first that applies decides:
/// 1. a read receipt (`disposition-notification`) is [`Class::NotReturned`];
/// 2. a feedback report is one [`Class::Complaint`] (or [`Class::NotReturned`] for feedback
///    types that are no complaint, such as `auth-failure`);
/// 3. a delivery status notification gives one report per failed or delayed recipient;
///    `Action: delayed` is a [`Class::SoftBounce`] because the message is still queued;
/// 4. an Amazon SES bounce or complaint notification gives one report per recipient;
/// 5. a plain-text bounce gives one report per recipient named in its text;
/// 6. an automatic reply is one [`Class::AutoReply`] about its sender;
/// 7. anything else is one [`Class::NotReturned`] with no recipient.
///
/// The result is never empty. The function does not fail: malformed, truncated, very large
/// or non-UTF-8 input gives a best-effort result, at worst one [`Class::NotReturned`]. A
/// panic inside the MIME parser is caught and also gives [`Class::NotReturned`], although
/// the panic hook still prints it and a binary built with `panic = "abort"` still aborts.
/// Time and memory grow linearly with the input size.
pub fn classify(raw: &[u8]) -> Vec<Report> {
    std::panic::catch_unwind(|| classify_parsed(raw))
        .unwrap_or_else(|_| vec![Report::not_returned("the message could not be parsed")])
}

fn classify_parsed(raw: &[u8]) -> Vec<Report> {
    let Some(message) = MessageParser::default().parse(raw) else {
        return vec![Report::not_returned("no message headers found")];
    };
    let returned = Returned::new(&message);

    let is_receipt = returned.report_type.as_deref() == Some("disposition-notification")
        || !returned
            .parts_of_type(&["message/disposition-notification"])
            .is_empty();
    if is_receipt {
        return vec![Report::not_returned(
            "read receipt (message disposition notification)",
        )];
    }
    if let Some(report) = feedback::classify_feedback(&returned) {
        return vec![report];
    }
    if let Some(reports) = dsn::classify_dsn(&returned) {
        return reports;
    }
    if let Some(reports) = ses::classify_ses(&returned) {
        return reports;
    }
    if let Some(reports) = plain_bounce::classify_plain_bounce(&returned) {
        return reports;
    }
    if let Some(report) = unsubscribe::classify_mailto_unsubscribe(&returned) {
        return vec![report];
    }
    if let Some(report) = auto_reply::classify_auto_reply(&returned) {
        return vec![report];
    }
    vec![Report::not_returned(
        "no bounce, complaint or automatic reply found",
    )]
}
