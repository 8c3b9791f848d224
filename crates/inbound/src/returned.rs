//! A parsed view of a returned message: the headers, parts and enclosed original that the
//! classifiers read.

use mail_parser::{
    Address, HeaderValue, Message, MessageParser, MessagePart, MimeHeaders, PartType,
};

use crate::text::{clean_address, find_verp, prefix};

/// Largest amount of a text part, in bytes, that the text classifiers read. Bounce texts
/// are short, and reading a 20 MB attachment as text would only cost time.
const TEXT_SCAN_BYTES: usize = 256 * 1024;

/// Largest amount of text, in bytes, that [`Returned::body_text`] returns over all parts.
const BODY_TEXT_BYTES: usize = 1024 * 1024;

/// Headers of the enclosed original message that map a report back to its delivery.
#[derive(Debug, Default, Clone)]
pub(crate) struct Original {
    pub(crate) message_id: Option<String>,
    pub(crate) to: Option<String>,
    /// Sender of the original, which a notice may name but is never a failed recipient.
    pub(crate) from: Option<String>,
    pub(crate) x_original_to: Option<String>,
    pub(crate) verp: Option<String>,
}

/// The parts of a returned message that the classifiers need.
#[derive(Debug, Clone)]
pub(crate) struct Returned<'a> {
    pub(crate) message: &'a Message<'a>,
    /// Decoded subject, empty when missing.
    pub(crate) subject: String,
    /// Sender address, lowercase.
    pub(crate) from: Option<String>,
    /// Display name of the sender, empty when missing.
    pub(crate) from_name: String,
    /// Every `To`, `Cc`, `Delivered-To` and `Envelope-To` address of the returned message,
    /// lowercase: the original sender, never a failed recipient.
    pub(crate) own_addresses: Vec<String>,
    /// The `report-type` of a top-level `multipart/report`, lowercase.
    pub(crate) report_type: Option<String>,
    pub(crate) original: Original,
    /// A VERP address found in the returned message's headers or the enclosed original.
    pub(crate) verp: Option<String>,
}

impl<'a> Returned<'a> {
    pub(crate) fn new(message: &'a Message<'a>) -> Returned<'a> {
        let from_address = message.from().and_then(Address::first);
        let original = find_original(message);
        let verp = find_verp(&header_block(message)).or_else(|| original.verp.clone());
        Returned {
            message,
            subject: message.subject().unwrap_or_default().trim().to_string(),
            from: from_address
                .and_then(|addr| addr.address())
                .and_then(clean_address),
            from_name: from_address
                .and_then(|addr| addr.name())
                .unwrap_or_default()
                .to_string(),
            own_addresses: own_addresses(message),
            report_type: message
                .content_type()
                .filter(|ctype| ctype.ctype().eq_ignore_ascii_case("multipart"))
                .and_then(|ctype| ctype.attribute("report-type"))
                .map(str::to_ascii_lowercase),
            original,
            verp,
        }
    }

    /// Returns a copy that uses `original` as the enclosed original message.
    pub(crate) fn with_original(&self, original: Original) -> Returned<'a> {
        Returned {
            verp: self.verp.clone().or_else(|| original.verp.clone()),
            original,
            ..self.clone()
        }
    }

    /// Returns the top-level parts (not those inside an enclosed message) whose content type
    /// is `kind/subtype`, compared case-insensitively.
    pub(crate) fn parts_of_type(&self, types: &[&str]) -> Vec<&'a MessagePart<'a>> {
        self.message
            .parts
            .iter()
            .filter(|part| types.iter().any(|expected| has_type(part, expected)))
            .collect()
    }

    /// Returns the raw value of the first header called `name` in the top-level headers.
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        header_text(self.message, name)
    }

    /// Returns the human-readable text of the notification: the decoded text parts of the
    /// top level, with HTML tags removed when there is no plain text. Each part is cut to
    /// 256 KiB and the whole to 1 MiB.
    pub(crate) fn body_text(&self) -> String {
        let mut text = String::new();
        for part in &self.message.parts {
            let is_headers_copy = has_type(part, "text/rfc822-headers");
            match &part.body {
                PartType::Text(body) if !is_headers_copy => {
                    text.push_str(prefix(body, TEXT_SCAN_BYTES));
                    text.push('\n');
                }
                _ => {}
            }
        }
        if text.trim().is_empty() {
            for part in &self.message.parts {
                if let PartType::Html(body) = &part.body {
                    text.push_str(&strip_tags(prefix(body, TEXT_SCAN_BYTES)));
                    text.push('\n');
                }
            }
        }
        if text.trim().is_empty() {
            // A multipart body whose boundaries the parser could not follow yields no text
            // part, but its raw bytes still hold the notice.
            let raw = self.message.raw_message();
            let start = self
                .message
                .parts
                .first()
                .map_or(raw.len(), |root| root.offset_body as usize)
                .min(raw.len());
            let end = raw.len().min(start + TEXT_SCAN_BYTES);
            text.push_str(&String::from_utf8_lossy(&raw[start..end]));
        }
        let bounded_len = prefix(&text, BODY_TEXT_BYTES).len();
        text.truncate(bounded_len);
        text
    }
}

/// Returns true when the part's content type is `expected` (such as "message/rfc822").
pub(crate) fn has_type(part: &MessagePart<'_>, expected: &str) -> bool {
    let Some(ctype) = part.content_type() else {
        return false;
    };
    let (kind, subtype) = expected.split_once('/').unwrap_or((expected, ""));
    ctype.ctype().eq_ignore_ascii_case(kind)
        && ctype
            .subtype()
            .is_some_and(|actual| actual.eq_ignore_ascii_case(subtype))
}

/// Returns the text of the first header called `name`, unfolded, or its first address when
/// the parser read it as an address list.
pub(crate) fn header_text(message: &Message<'_>, name: &str) -> Option<String> {
    let header = message
        .parts
        .first()?
        .headers
        .iter()
        .find(|header| header.name().eq_ignore_ascii_case(name))?;
    let text = value_text(header.value());
    (!text.is_empty()).then_some(text)
}

fn value_text(value: &HeaderValue<'_>) -> String {
    let text = match value {
        HeaderValue::Text(text) => text.to_string(),
        HeaderValue::TextList(list) => list.join(" "),
        HeaderValue::Address(address) => address
            .iter()
            .filter_map(|addr| addr.address())
            .collect::<Vec<_>>()
            .join(", "),
        _ => String::new(),
    };
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Returns every top-level header as `name: value` lines, for the VERP scan.
fn header_block(message: &Message<'_>) -> String {
    let Some(root) = message.parts.first() else {
        return String::new();
    };
    let mut block = String::new();
    for header in &root.headers {
        block.push_str(header.name());
        block.push_str(": ");
        block.push_str(&value_text(header.value()));
        block.push('\n');
        if block.len() > TEXT_SCAN_BYTES {
            break;
        }
    }
    block
}

fn own_addresses(message: &Message<'_>) -> Vec<String> {
    let mut addresses: Vec<String> = message
        .to()
        .into_iter()
        .chain(message.cc())
        .flat_map(|address| address.iter())
        .filter_map(|addr| addr.address())
        .filter_map(clean_address)
        .collect();
    for name in [
        "Delivered-To",
        "X-Original-To",
        "Envelope-To",
        "Return-Path",
    ] {
        if let Some(address) = header_text(message, name)
            .as_deref()
            .and_then(clean_address)
        {
            addresses.push(address);
        }
    }
    addresses
}

/// Finds the enclosed original message (`message/rfc822`, `message/global` or a headers-only
/// `text/rfc822-headers` copy) and reads the headers that identify the delivery.
fn find_original(message: &Message<'_>) -> Original {
    for part in &message.parts {
        if let Some(enclosed) = part.message() {
            return read_original(enclosed);
        }
        let headers_only = has_type(part, "text/rfc822-headers")
            || has_type(part, "message/rfc822-headers")
            || has_type(part, "message/global-headers");
        if headers_only {
            let contents = part.contents();
            if let Some(enclosed) = MessageParser::default().parse_headers(contents) {
                return read_original(&enclosed);
            }
        }
    }
    Original::default()
}

pub(crate) fn read_original(enclosed: &Message<'_>) -> Original {
    let message_id = enclosed.message_id().map(|id| id.trim().to_string());
    let to = enclosed
        .to()
        .and_then(Address::first)
        .and_then(|addr| addr.address())
        .and_then(clean_address);
    let from = enclosed
        .from()
        .and_then(Address::first)
        .and_then(|addr| addr.address())
        .and_then(clean_address);
    let x_original_to = header_text(enclosed, "X-Original-To")
        .or_else(|| header_text(enclosed, "X-HmXmrOriginalRecipient"))
        .as_deref()
        .and_then(clean_address);
    let verp = find_verp(&header_block(enclosed));
    Original {
        message_id: message_id.filter(|id| !id.is_empty()),
        to,
        from,
        x_original_to,
        verp,
    }
}

/// Removes HTML tags and decodes the few entities that matter for reading a bounce.
fn strip_tags(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    for character in html.chars() {
        match character {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(character),
            _ => {}
        }
    }
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
}
