//! Building email messages: addresses, headers and parts, through lettre's typed builders.
//!
//! Header values that come from customer data (the display name and the subject) have every
//! control character (CR, LF, NUL, tab and the rest of Unicode's `Cc` class) and the Unicode
//! line and paragraph separators replaced with a space. Such a value is not rejected,
//! because one stray line break in an imported name should not stop a campaign, but it can
//! never start a new header line. NUL characters are removed from the bodies.

use chrono::{DateTime, Utc};
use lettre::message::header::{
    ContentTransferEncoding, ContentType, Header, HeaderName, HeaderValue,
};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use lettre::{Address, Message};
use serde::Deserialize;
use std::borrow::Cow;
use std::fmt;
use tact_domain::{CustomerId, Purpose};

use crate::channel::Ready;
use crate::token::{LinkKey, LinkPurpose};
use crate::{Error, Outgoing};

/// Sender, links and ids of outgoing email, as in the `[message]` table of the configuration.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageConfig {
    /// The `From` mailbox, such as `Acme News <news@acme.example>`.
    pub from: String,
    /// The `Reply-To` mailbox, if replies go elsewhere.
    #[serde(default)]
    pub reply_to: Option<String>,
    /// The public base URL of tact's HTTP server, such as `https://tact.acme.example`,
    /// without a trailing slash. Links are `<base_url>/unsubscribe/<token>` and
    /// `<base_url>/preferences/<token>`.
    pub base_url: String,
    /// The address that unsubscribes by email, used in the `mailto:` of `List-Unsubscribe`.
    pub unsubscribe_mailto: String,
    /// The secret that signs links and bounce addresses: at least 32 bytes.
    pub secret: String,
    /// The domain part of `Message-ID`s, such as `mail.acme.example`.
    pub message_id_domain: String,
    /// When set, the envelope sender is the VERP address
    /// `bounces+<delivery-id>-<signature>@<bounce_domain>`; otherwise it is the `From`
    /// address. Default none.
    #[serde(default)]
    pub bounce_domain: Option<String>,
}

impl fmt::Debug for MessageConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageConfig")
            .field("from", &self.from)
            .field("reply_to", &self.reply_to)
            .field("base_url", &self.base_url)
            .field("unsubscribe_mailto", &self.unsubscribe_mailto)
            .field("secret", &"<redacted>")
            .field("message_id_domain", &self.message_id_domain)
            .field("bounce_domain", &self.bounce_domain)
            .finish()
    }
}

/// A validated [`MessageConfig`] that builds messages.
#[derive(Debug, Clone)]
pub struct Composer {
    from: Mailbox,
    reply_to: Option<Mailbox>,
    base_url: String,
    unsubscribe_mailto: Address,
    key: LinkKey,
    message_id_domain: String,
    bounce_domain: Option<String>,
}

/// The signed links of one customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Links {
    /// `<base_url>/unsubscribe/<token>`.
    pub unsubscribe_url: String,
    /// `<base_url>/preferences/<token>`.
    pub preferences_url: String,
    /// The unsubscribe token alone, for the `mailto:` subject.
    pub unsubscribe_token: String,
}

impl Composer {
    /// Validates the configuration.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidAddress`] for an invalid mailbox and [`Error::InvalidConfig`] for a
    /// base URL that is not `https://` (or `http://`) without spaces, a secret shorter than
    /// 32 bytes or an invalid domain.
    pub fn new(config: &MessageConfig) -> Result<Composer, Error> {
        let reply_to = config.reply_to.as_deref().map(parse_mailbox).transpose()?;
        let base_url = config.base_url.trim_end_matches('/').to_owned();
        let url_ok = (base_url.starts_with("https://") || base_url.starts_with("http://"))
            && base_url
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'>' && b != b'<');
        if !url_ok {
            return Err(Error::InvalidConfig {
                key: "message.base_url",
                reason: format!("{base_url:?} is not an http(s) URL without spaces"),
            });
        }
        Ok(Composer {
            from: parse_mailbox(&config.from)?,
            reply_to,
            base_url,
            unsubscribe_mailto: parse_address(&config.unsubscribe_mailto)?,
            key: LinkKey::new(config.secret.as_bytes())?,
            message_id_domain: ascii_domain(
                &config.message_id_domain,
                "message.message_id_domain",
            )?,
            bounce_domain: config
                .bounce_domain
                .as_deref()
                .map(|domain| ascii_domain(domain, "message.bounce_domain"))
                .transpose()?,
        })
    }

    /// The key that signs links and bounce addresses.
    pub fn key(&self) -> &LinkKey {
        &self.key
    }

    /// The customer's signed links, issued at `now`.
    pub fn links(&self, customer: CustomerId, now: DateTime<Utc>) -> Links {
        let unsubscribe_token = self.key.sign(LinkPurpose::Unsubscribe, customer, now);
        let preferences = self.key.sign(LinkPurpose::Preferences, customer, now);
        Links {
            unsubscribe_url: self.unsubscribe_url(&unsubscribe_token),
            preferences_url: format!("{}/preferences/{preferences}", self.base_url),
            unsubscribe_token,
        }
    }

    /// Builds `<base_url>/unsubscribe/<token>`.
    fn unsubscribe_url(&self, token: &str) -> String {
        format!("{}/unsubscribe/{token}", self.base_url)
    }

    /// The `Message-ID` of a delivery: `<delivery-<id>@<message_id_domain>>`, the same on
    /// every attempt.
    pub fn message_id(&self, message: &Outgoing) -> String {
        format!(
            "<delivery-{}@{}>",
            message.delivery().0,
            self.message_id_domain
        )
    }

    /// Builds the email for a checked message, dated at the check time.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidAddress`] for a recipient address that is invalid or has a non-ASCII
    /// local part (which would need SMTPUTF8).
    pub fn compose(&self, ready: Ready<'_>) -> Result<Message, Error> {
        let message = ready.message();
        let now = ready.now();
        let recipient = message.recipient();
        let to_address = parse_address(&recipient.address)?;
        let to = Mailbox::new(recipient.name.as_deref().map(clean_header_text), to_address);
        let sender = match &self.bounce_domain {
            Some(domain) => parse_address(&self.key.verp_address(message.delivery(), domain))?,
            None => self.from.email.clone(),
        };
        let envelope = lettre::address::Envelope::new(Some(sender), vec![to.email.clone()])
            .map_err(|error| invalid_address(&recipient.address, &error))?;

        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(clean_header_text(&message.content().subject))
            .message_id(Some(self.message_id(message)))
            .date(now.into())
            .envelope(envelope);
        if let Some(reply_to) = &self.reply_to {
            builder = builder.reply_to(reply_to.clone());
        }
        if message.approval().proposal().purpose != Purpose::Transactional {
            // Only the unsubscribe link goes into the headers, so only it is signed here.
            let token = self
                .key
                .sign(LinkPurpose::Unsubscribe, recipient.customer, now);
            builder = builder
                .header(ListUnsubscribe(format!(
                    "<{}>, <mailto:{}?subject=unsubscribe-{token}>",
                    self.unsubscribe_url(&token),
                    self.unsubscribe_mailto
                )))
                .header(ListUnsubscribePost);
        }

        let text = part_body(&message.content().text);
        let result = match &message.content().html {
            Some(html) => {
                builder.multipart(MultiPart::alternative_plain_html(text, part_body(html)))
            }
            None => builder.singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(text),
            ),
        };
        result.map_err(|error| invalid_address(&recipient.address, &error))
    }
}

/// Builds the email for `message` as [`Composer::compose`] does, validating `config` first.
///
/// # Errors
///
/// The errors of [`Composer::new`] and [`Composer::compose`].
pub fn build_email(config: &MessageConfig, message: Ready<'_>) -> Result<Message, Error> {
    Composer::new(config)?.compose(message)
}

/// The message without the line breaks that lettre adds after the last part.
///
/// lettre 0.11.23 ends a formatted message with one CRLF after the body's own line break,
/// and its SMTP client always writes CRLF before the closing `.`, so the received body would
/// end with two blank lines more than it has. Dropping up to two trailing CRLFs and letting
/// the terminator supply the last one keeps the body as written, adding a final line break
/// when it had none.
pub(crate) fn trim_message_end(bytes: &[u8]) -> &[u8] {
    let mut end = bytes.len();
    for _ in 0..2 {
        if bytes[..end].ends_with(b"\r\n") {
            end -= 2;
        }
    }
    &bytes[..end]
}

/// A text or HTML part's body: CRLF line endings, no NUL (which RFC 5322 forbids), and
/// `7bit` when it is ASCII with lines of at most 998 bytes, otherwise the encoding lettre
/// chooses (quoted-printable or base64).
///
/// lettre 0.11.23 converts bare LF to CRLF by inserting one `\r` at a time, which moves the
/// rest of the string each time and costs quadratic time in the number of lines. Converting
/// here in one pass, and passing a 7-bit body as already encoded, avoids that.
fn part_body(body: &str) -> Body {
    let text = crlf_text(body);
    if is_seven_bit(&text) {
        Body::dangerous_pre_encoded(text.into_bytes(), ContentTransferEncoding::SevenBit)
    } else {
        Body::new(text)
    }
}

fn crlf_text(body: &str) -> String {
    let cleaned: Cow<'_, str> = if body.contains('\0') {
        Cow::Owned(body.replace('\0', ""))
    } else {
        Cow::Borrowed(body)
    };
    let mut text = String::with_capacity(cleaned.len() + cleaned.len() / 32 + 2);
    let mut lines = cleaned.split('\n');
    text.push_str(lines.next().unwrap_or_default());
    for line in lines {
        if !text.ends_with('\r') {
            text.push('\r');
        }
        text.push('\n');
        text.push_str(line);
    }
    text
}

/// Whether text from [`crlf_text`] is valid as a `7bit` body: ASCII, no CR outside CRLF,
/// and lines of at most 998 bytes (RFC 5322, section 2.1.1).
fn is_seven_bit(text: &str) -> bool {
    if !text.is_ascii() {
        return false;
    }
    let mut line_start = 0;
    let mut line_feeds = 0;
    for (index, _) in text.match_indices('\n') {
        // The line before index ends with CR, which does not count towards the limit.
        if index - line_start > 999 {
            return false;
        }
        line_start = index + 1;
        line_feeds += 1;
    }
    let carriage_returns = text.bytes().filter(|byte| *byte == b'\r').count();
    text.len() - line_start <= 998 && carriage_returns == line_feeds
}

/// Replaces characters that could end a header line or corrupt it with a space.
fn clean_header_text(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// Parses `local@domain`, converting an internationalised domain to its ASCII (punycode)
/// form for the envelope and the header.
fn parse_address(address: &str) -> Result<Address, Error> {
    let (local, domain) = address
        .trim()
        .rsplit_once('@')
        .ok_or_else(|| invalid(address, "it has no @"))?;
    if !local.is_ascii() {
        return Err(invalid(
            address,
            "the part before @ is not ASCII, which needs SMTPUTF8; tact sends ASCII addresses only",
        ));
    }
    let domain =
        idna::domain_to_ascii(domain).map_err(|_| invalid(address, "the domain is invalid"))?;
    Address::new(local, &domain).map_err(|error| invalid_address(address, &error))
}

fn parse_mailbox(mailbox: &str) -> Result<Mailbox, Error> {
    let parsed: Mailbox = mailbox
        .parse()
        .map_err(|error| invalid_address(mailbox, &error))?;
    let email = parse_address(parsed.email.as_ref())?;
    Ok(Mailbox::new(
        parsed.name.as_deref().map(clean_header_text),
        email,
    ))
}

fn ascii_domain(domain: &str, key: &'static str) -> Result<String, Error> {
    let ascii = idna::domain_to_ascii(domain).ok().filter(|d| !d.is_empty());
    ascii.ok_or_else(|| Error::InvalidConfig {
        key,
        reason: format!("{domain:?} is not a valid domain name"),
    })
}

fn invalid(address: &str, reason: &str) -> Error {
    Error::InvalidAddress {
        address: address.to_owned(),
        reason: reason.to_owned(),
    }
}

fn invalid_address(address: &str, error: &dyn std::error::Error) -> Error {
    invalid(address, &error.to_string())
}

/// `List-Unsubscribe` (RFC 2369): the https link and the `mailto:` in angle brackets.
#[derive(Debug, Clone)]
struct ListUnsubscribe(String);

impl Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }

    fn parse(value: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribe(value.to_owned()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058).
#[derive(Debug, Clone)]
struct ListUnsubscribePost;

impl Header for ListUnsubscribePost {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }

    fn parse(_value: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribePost)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "List-Unsubscribe=One-Click".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_text_converts_lone_lf_and_drops_nul() {
        assert_eq!(crlf_text("a\nb\r\nc\0d\n\n"), "a\r\nb\r\ncd\r\n\r\n");
        assert_eq!(crlf_text("\nZoë\r"), "\r\nZoë\r");
        assert_eq!(crlf_text(""), "");
    }

    #[test]
    fn seven_bit_needs_ascii_short_lines() {
        assert!(is_seven_bit("plain\r\ntext\r\n"));
        assert!(is_seven_bit(&"x".repeat(998)));
        assert!(!is_seven_bit(&"x".repeat(999)));
        assert!(!is_seven_bit("Zoë\r\n"));
        assert!(!is_seven_bit("bare\rcarriage return"));
    }

    #[test]
    fn part_body_picks_encoding() {
        assert_eq!(
            part_body("hi\n").encoding(),
            ContentTransferEncoding::SevenBit
        );
        assert_eq!(part_body("hi\n").as_ref(), b"hi\r\n");
        let encoding = part_body("Three tips for spring from Zoë\n").encoding();
        assert_eq!(encoding, ContentTransferEncoding::QuotedPrintable);
    }

    #[test]
    fn trim_message_end_drops_two_breaks() {
        assert_eq!(trim_message_end(b"a\r\n\r\n\r\n"), b"a\r\n");
        assert_eq!(trim_message_end(b"a\r\n\r\n"), b"a");
        assert_eq!(trim_message_end(b"a\r\n"), b"a");
        assert_eq!(trim_message_end(b"a"), b"a");
    }

    #[test]
    fn header_text_loses_control_characters() {
        assert_eq!(
            clean_header_text("Ann\r\nBcc: x@evil.example\0\u{2028}!"),
            "Ann  Bcc: x@evil.example  !"
        );
        assert_eq!(clean_header_text("Zoë Ñandú"), "Zoë Ñandú");
    }

    #[test]
    fn address_domain_becomes_punycode() {
        let address = parse_address("anna@bücher.example").unwrap();
        assert_eq!(address.to_string(), "anna@xn--bcher-kva.example");
    }

    #[test]
    fn address_rejects_non_ascii_local_part() {
        let error = parse_address("zoë@example.com").unwrap_err();
        assert!(matches!(error, Error::InvalidAddress { .. }), "{error}");
    }

    #[test]
    fn address_rejects_injected_line() {
        for bad in [
            "ann@example.com\r\nBcc: x@y.z",
            "ann\n@example.com",
            "no-at-sign",
        ] {
            assert!(parse_address(bad).is_err(), "{bad:?}");
        }
    }
}
