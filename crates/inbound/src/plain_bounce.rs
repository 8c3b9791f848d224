//! Bounces without a delivery-status part: the plain-text notices of qmail, Exim, Postfix,
//! Sendmail, Exchange and the large mailbox providers.
//!
//! A message counts as such a bounce only when two signs agree: a sender or subject that
//! mail systems use for bounces, and a body phrase that states a message could not be
//! delivered. The recipients are the addresses named in the notice before the copy of the
//! original, other than the bounce's own sender and receiver.

use mail_parser::MessageParser;

use crate::report::Report;
use crate::returned::{Original, Returned, read_original};
use crate::severity::classify_failure;
use crate::text::{
    after_address, contains_any, diagnostic_lines, find_addresses, find_basic_code,
    find_status_code, one_line, prefix,
};

/// Local parts of the senders that mail systems use for bounces.
const DAEMON_LOCAL_PARTS: &[&str] = &[
    "mailer-daemon",
    "mailer_daemon",
    "mailerdaemon",
    "mail-daemon",
    "maildaemon",
    "postmaster",
    "mdaemon",
    "bounce",
    "bounces",
    "nobody",
    "post_master",
];

/// Subject phrases of bounce notices, lowercase.
const SUBJECT_MARKERS: &[&str] = &[
    "undelivered mail",
    "undeliverable",
    "undelivered",
    "delivery status notification",
    "mail delivery failed",
    "mail delivery failure",
    "delivery failure",
    "delivery failed",
    "failure notice",
    "failed delivery",
    "returned mail",
    "return mail",
    "mail returned",
    "non-delivery",
    "nondeliverable",
    "non delivery",
    "could not be delivered",
    "couldn't be delivered",
    "not delivered",
    "delivery problem",
    "delivery notification",
    "mail system error",
    "mail failure",
    "bounce",
    "rejected",
    "warning: could not send",
    "unzustellbar",
    "non remis",
    "non recapitabile",
    "no entregado",
];

/// Body phrases that state a message could not be delivered, lowercase.
const BODY_MARKERS: &[&str] = &[
    "qmail-send program",
    "mail delivery software",
    "could not be delivered",
    "couldn't be delivered",
    "could not deliver",
    "couldn't deliver",
    "unable to deliver",
    "was not delivered",
    "wasn't delivered",
    "not be delivered",
    "delivery has failed",
    "delivery failed",
    "delivery to the following",
    "permanent fatal error",
    "permanent error",
    "following address(es) failed",
    "following addresses had",
    "following recipient",
    "undeliverable",
    "undelivered",
    "returned to sender",
    "message you sent",
    "was rejected",
    "been rejected",
    "failed permanently",
    "temporary failure",
    "transient failure",
    "delivery error",
    "delivery problem",
    "has not yet been delivered",
    "still undelivered",
    "message could not",
    "reject reason",
    "user unknown",
    "unknown user",
    "does not exist",
    "error delivering",
    "error has occurred while attempting to deliver",
    "failed addresses",
    "failure reasons",
    "unsent message",
    "transcript of session",
    "server message",
    "did not like",
    "did not reach",
    "returned mail",
    "account is disabled",
    "invalid user address",
    "no such user",
];

/// Phrases that mean delivery is only delayed and will be retried.
const DELAY_MARKERS: &[&str] = &[
    "has not yet been delivered",
    "not been delivered yet",
    "still undelivered",
    "will continue trying",
    "will keep trying",
    "will retry",
    "warning: could not send",
    "delivery delayed",
    "delayed mail",
    "is delayed",
];

/// Lines after which the notice quotes the original message, lowercase.
const COPY_MARKERS: &[&str] = &[
    "--- below this line is a copy of the message",
    "this is a copy of the message",
    "----- original message",
    "-----original message",
    "----- unsent message below",
    "------ original message follows",
    "original message headers",
    "--- the header of the original message",
    "content-type: message/rfc822",
    "bounced e-mail:",
    "original message:",
    "original message follows",
    "-------original message",
    "------- returned message",
    "below is a copy of the original message",
    "----- unsent message follows",
    "message headers follow",
    "message text follows",
    "\nreceived: from",
    "\nreturn-path:",
];

/// Largest number of recipients read from one notice, so a notice that quotes a long
/// address list cannot turn into thousands of reports.
const MAX_RECIPIENTS: usize = 50;

/// Largest number of addresses in one notice that are checked as recipients.
const MAX_CANDIDATES: usize = 1000;

/// Reads `returned` as a plain-text bounce, if both its sender or subject and its body say
/// so. Returns one report per recipient found, or one report without a recipient when the
/// notice names none.
pub(crate) fn classify_plain_bounce(returned: &Returned<'_>) -> Option<Vec<Report>> {
    let body = returned.body_text();
    let lower_body = body.to_lowercase();
    let from_daemon = is_daemon_sender(returned);
    let subject_marks_bounce = contains_any(&returned.subject.to_lowercase(), SUBJECT_MARKERS);
    let body_marks_bounce = contains_any(&lower_body, BODY_MARKERS);
    if !(from_daemon && subject_marks_bounce
        || body_marks_bounce && (from_daemon || subject_marks_bounce))
    {
        return None;
    }
    let notice = notice_text(&body, &lower_body);
    let inline_original;
    let returned = if returned.original.message_id.is_none() && returned.original.to.is_none() {
        inline_original = returned.with_original(read_inline_original(&body[notice.len()..]));
        &inline_original
    } else {
        returned
    };
    let delayed = contains_any(&lower_body, DELAY_MARKERS);
    let mut reports: Vec<Report> = recipients(returned, notice)
        .into_iter()
        .map(|(recipient, segment)| bounce_report(returned, Some(recipient), segment, delayed))
        .collect();
    if reports.is_empty() {
        // A notice that names no address is about the one recipient of the quoted original.
        let recipient = returned.original.to.clone();
        reports.push(bounce_report(returned, recipient, notice, delayed));
    }
    Some(reports)
}

/// Reads the headers of an original message quoted as text after the notice, skipping the
/// marker line that introduces it.
fn read_inline_original(rest: &str) -> Original {
    let rest = prefix(rest, 64 * 1024);
    let starts_with_header = rest
        .split_once(':')
        .is_some_and(|(name, _)| !name.is_empty() && !name.contains([' ', '\n']));
    let headers = if starts_with_header {
        rest.trim_start()
    } else {
        rest.split_once('\n')
            .map_or("", |(_, after)| after)
            .trim_start()
    };
    MessageParser::default()
        .parse_headers(headers.as_bytes())
        .map(|message| read_original(&message))
        .unwrap_or_default()
}

fn is_daemon_sender(returned: &Returned<'_>) -> bool {
    let local_part = returned
        .from
        .as_deref()
        .and_then(|address| address.split('@').next())
        .unwrap_or_default();
    let name = returned.from_name.to_lowercase();
    let null_sender = returned.from.is_none() && returned.message.from().is_some();
    null_sender
        || DAEMON_LOCAL_PARTS.contains(&local_part)
        || name.contains("mail delivery")
        || name.contains("mailer-daemon")
        || name.contains("postmaster")
}

/// Returns the part of the body before the quoted original, at most 64 KiB.
fn notice_text<'a>(body: &'a str, lower_body: &str) -> &'a str {
    let body = prefix(body, 64 * 1024);
    let end = COPY_MARKERS
        .iter()
        .filter_map(|marker| lower_body.find(marker))
        .filter(|&position| position > 0 && position <= body.len())
        .min()
        .unwrap_or(body.len());
    let mut cut = end;
    while !body.is_char_boundary(cut) {
        cut -= 1;
    }
    &body[..cut]
}

/// Lists each recipient named in `notice` with the text about it: the whole notice when it
/// names one recipient, and otherwise the lines from the one that names the recipient up to
/// the line that names the next. Servers write the reason before the address as often as
/// after it.
fn recipients<'a>(returned: &Returned<'_>, notice: &'a str) -> Vec<(String, &'a str)> {
    let found = find_recipients(returned, notice);
    if let [(address, _)] = found.as_slice() {
        return vec![(address.clone(), prefix(notice, 4096))];
    }

    let line_start = |offset: usize| notice[..offset].rfind('\n').map_or(0, |p| p + 1);
    let mut segments = Vec::with_capacity(found.len());
    for (index, (address, offset)) in found.iter().enumerate() {
        let start = line_start(*offset);
        let end = found
            .get(index + 1)
            .map_or(notice.len(), |(_, next)| line_start(*next));
        let segment = &notice[start..end.max(*offset)];
        segments.push((address.clone(), prefix(segment, 4096)));
    }
    segments
}

/// Finds the distinct recipient addresses in `notice` with the offset of their first
/// mention, at most [`MAX_RECIPIENTS`].
fn find_recipients(returned: &Returned<'_>, notice: &str) -> Vec<(String, usize)> {
    let mut found: Vec<(String, usize)> = Vec::new();
    // A notice that quotes thousands of addresses is cut short, because each check scans
    // back to the start of the candidate's line.
    for candidate in find_addresses(notice).into_iter().take(MAX_CANDIDATES) {
        let seen = found
            .iter()
            .any(|(address, _)| *address == candidate.address);
        let recipient = !seen
            && !is_known_non_recipient(returned, &candidate.address)
            && !is_context_excluded(notice, candidate.offset);
        if recipient {
            found.push((candidate.address, candidate.offset));
        }
        if found.len() == MAX_RECIPIENTS {
            break;
        }
    }
    found
}

/// Returns true for the addresses that a notice names but that never failed: the bounce's
/// own sender and receiver, daemon addresses, the VERP address, and the original's sender
/// and Message-ID. The original's `To` is always kept, even when it is a postmaster.
fn is_known_non_recipient(returned: &Returned<'_>, address: &str) -> bool {
    if returned.original.to.as_deref() == Some(address) {
        return false;
    }
    let local_part = address.split('@').next().unwrap_or_default();
    let original = &returned.original;
    DAEMON_LOCAL_PARTS.contains(&local_part)
        || returned.from.as_deref() == Some(address)
        || returned.own_addresses.iter().any(|own| own == address)
        || returned.verp.as_deref() == Some(address)
        || original.from.as_deref() == Some(address)
        || original
            .message_id
            .as_deref()
            .is_some_and(|id| id.eq_ignore_ascii_case(address))
}

/// Line starts that show an address is not a failed recipient: a quoted header of the
/// original message, or the sender named in the notice.
const NON_RECIPIENT_LINES: &[&str] = &[
    "from:",
    "to:",
    "cc:",
    "sender:",
    "reply-to:",
    "return-path:",
    "message-id",
    "references",
    "in-reply-to",
    "original-envelope-id",
    "envelope-id",
    "reporting-mta",
    "received:",
    "mail from:",
];

/// Returns true when the address at `offset` is the sender or sits in a quoted header line,
/// such as `Message-ID:` or `From:`, rather than naming a failed recipient.
fn is_context_excluded(notice: &str, offset: usize) -> bool {
    let line_start = notice[..offset]
        .rfind('\n')
        .map_or(0, |position| position + 1);
    // Forwarded notices quote every line with "> ".
    let line = notice[line_start..offset]
        .trim_start_matches(|c: char| c == '>' || c.is_whitespace())
        .to_ascii_lowercase();
    if NON_RECIPIENT_LINES
        .iter()
        .any(|start| line.starts_with(start))
        || line.contains("generated from")
        || line.contains("sent by")
    {
        return true;
    }
    let before = notice[..line_start].trim_end();
    let previous_line = before
        .rsplit('\n')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    previous_line.trim_end().ends_with("sent by")
}

fn bounce_report(
    returned: &Returned<'_>,
    recipient: Option<String>,
    segment: &str,
    delayed: bool,
) -> Report {
    let status = find_status_code(segment).or_else(|| find_basic_code(segment));
    let evidence = format!("{segment}\n{}", returned.subject);
    let class = classify_failure(status.as_deref(), &evidence, delayed);
    let reason = match (diagnostic_lines(segment), &recipient) {
        (Some(lines), _) => lines,
        (None, Some(address)) => after_address(segment, address),
        (None, None) => segment,
    };
    let reason = reason.trim_start_matches(['>', ':', ' ', '\r', '\n', '\t', '.']);
    let reason = if reason.trim().is_empty() {
        returned.subject.as_str()
    } else {
        reason
    };
    let original = &returned.original;
    Report {
        class,
        original_recipient: original
            .x_original_to
            .clone()
            .or_else(|| original.to.clone())
            .filter(|address| Some(address) != recipient.as_ref()),
        recipient,
        status,
        reason: one_line(reason),
        verp: returned.verp.clone(),
        original_message_id: original.message_id.clone(),
        unsubscribe_token: None,
    }
}
