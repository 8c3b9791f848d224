//! Errors: [`Error`] for building messages and configuration, [`SendError`] for sending.

use chrono::{DateTime, Utc};
use std::path::PathBuf;
use std::time::Duration;

/// Errors from configuration, templates, addresses and links, before anything is sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A template part does not parse.
    #[error("invalid template {part}: {detail}")]
    InvalidTemplate {
        /// `subject`, `text` or `html`.
        part: &'static str,
        /// The parser's message, with the line.
        detail: String,
    },
    /// A template uses a variable that is neither built in nor an imported field.
    #[error(
        "template {part} uses unknown field `{field}`: import it for every customer or remove \
         it from the template"
    )]
    UnknownField {
        /// `subject`, `text` or `html`.
        part: &'static str,
        /// The variable name.
        field: String,
    },
    /// A customer lacks a field that the template uses.
    #[error("customer has no value for field `{field}`, which the template uses")]
    MissingField {
        /// The variable name.
        field: String,
    },
    /// Rendering failed for another reason, such as a filter error.
    #[error("rendering template {part} failed: {detail}")]
    Render {
        /// `subject`, `text` or `html`.
        part: &'static str,
        /// The engine's message.
        detail: String,
    },
    /// An email address or mailbox is invalid.
    #[error("invalid address {address:?}: {reason}")]
    InvalidAddress {
        /// The address as given.
        address: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A configuration value is invalid.
    #[error("invalid delivery configuration `{key}`: {reason}")]
    InvalidConfig {
        /// The key, such as `smtp.pool_size`.
        key: &'static str,
        /// What is wrong and what to write instead.
        reason: String,
    },
    /// The recipient is not the customer the approval names.
    #[error("recipient is customer {recipient}, but the approval is for customer {approved}")]
    WrongCustomer {
        /// The customer of the recipient.
        recipient: tact_domain::CustomerId,
        /// The customer of the approval.
        approved: tact_domain::CustomerId,
    },
    /// A directory could not be created or read.
    #[error("cannot use directory {path}: {source}")]
    Directory {
        /// The directory.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

/// Why one message was not sent. Nothing was delivered when a send returns this error.
///
/// [`SendError::is_transient`] tells whether sending the same message again later can
/// succeed. [`SendError::is_bounce`] tells whether the server rejected the recipient or the
/// message for good, which the caller records as a bounce.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The approval expired before the send started.
    #[error("approval expired at {expires_at}; decide again before sending")]
    Expired {
        /// When the approval expired.
        expires_at: DateTime<Utc>,
    },
    /// The approval is for another channel than the one asked to send.
    #[error("approval is for channel `{approved}`, but channel `{channel}` was asked to send it")]
    WrongChannel {
        /// The channel in the approval.
        approved: String,
        /// The channel that refused.
        channel: String,
    },
    /// The message could not be built, for example because of an invalid address.
    #[error("message cannot be built: {0}")]
    InvalidMessage(#[source] Error),
    /// The server answered with a negative reply (4xx or 5xx) during the transaction.
    #[error("server {host} rejected the message at {stage} with {code} {reply}")]
    Rejected {
        /// The server's host name.
        host: String,
        /// The SMTP command answered: `MAIL`, `RCPT`, `DATA` or `message`.
        stage: &'static str,
        /// The SMTP reply code, such as 451 or 550.
        code: u16,
        /// The reply text, lines joined by spaces.
        reply: String,
    },
    /// Connecting, greeting, TLS or authentication failed, or the connection broke.
    #[error("connection to {host} failed: {detail}")]
    Connection {
        /// The server's host name.
        host: String,
        /// What failed.
        detail: String,
        /// The SMTP code, when a negative reply ended the session setup.
        code: Option<u16>,
    },
    /// The server did not answer within the configured timeout.
    #[error("server {host} did not answer within {after:?}")]
    Timeout {
        /// The server's host name.
        host: String,
        /// The timeout that ran out.
        after: Duration,
    },
    /// Writing a file failed.
    #[error("writing {path} failed: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

impl SendError {
    /// Whether the same message may be delivered by a later attempt: 4xx replies, timeouts,
    /// broken or refused connections, TLS and authentication failures (which need the
    /// operator, not the recipient, to change), and file-system errors.
    pub fn is_transient(&self) -> bool {
        match self {
            SendError::Rejected { code, .. } => (400..500).contains(code),
            SendError::Connection { .. } | SendError::Timeout { .. } | SendError::Io { .. } => true,
            SendError::Expired { .. }
            | SendError::WrongChannel { .. }
            | SendError::InvalidMessage(_) => false,
        }
    }

    /// Whether the server rejected this recipient or message for good (a 5xx reply to
    /// `MAIL`, `RCPT`, `DATA` or the message), so the address should be suppressed.
    pub fn is_bounce(&self) -> bool {
        matches!(self, SendError::Rejected { code, .. } if (500..600).contains(code))
    }

    /// The SMTP reply code, when a server answered with one.
    pub fn code(&self) -> Option<u16> {
        match self {
            SendError::Rejected { code, .. } => Some(*code),
            SendError::Connection { code, .. } => *code,
            _ => None,
        }
    }

    /// The server's reply text, when a server answered with a negative reply.
    pub fn reply(&self) -> Option<&str> {
        match self {
            SendError::Rejected { reply, .. } => Some(reply),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(code: u16) -> SendError {
        SendError::Rejected {
            host: "mx.example.com".into(),
            stage: "RCPT",
            code,
            reply: "no".into(),
        }
    }

    #[test]
    fn rejected_4xx_is_transient() {
        assert!(rejected(451).is_transient());
        assert!(!rejected(451).is_bounce());
        assert_eq!(rejected(451).code(), Some(451));
    }

    #[test]
    fn rejected_5xx_is_bounce() {
        assert!(!rejected(550).is_transient());
        assert!(rejected(550).is_bounce());
        assert_eq!(rejected(550).reply(), Some("no"));
    }

    #[test]
    fn timeout_is_transient_without_code() {
        let error = SendError::Timeout {
            host: "mx".into(),
            after: Duration::from_secs(5),
        };
        assert!(error.is_transient());
        assert_eq!(error.code(), None);
    }
}
