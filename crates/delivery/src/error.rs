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
    /// The thread that runs the SMTP connections could not be started.
    #[error("cannot start the SMTP connection thread: {0}")]
    Thread(#[source] std::io::Error),
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
/// [`SendError::is_transient`] is true when sending the same message again later can succeed.
/// [`SendError::is_bounce`] is true when the server rejected the recipient's address for good,
/// which the caller records as a hard bounce.
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

    /// Whether the server rejected the recipient's address for good, so the address should
    /// be suppressed: a 5xx reply to `RCPT`, or a 5xx reply to `DATA` or the message whose
    /// enhanced status code (RFC 3463) is `5.1.x`, a bad destination address.
    ///
    /// Other 5xx replies are permanent failures of this message (a rejected sender, content
    /// refused as spam) but say nothing against the address, so they are not bounces.
    pub fn is_bounce(&self) -> bool {
        match self {
            SendError::Rejected {
                stage, code, reply, ..
            } if (500..600).contains(code) => match *stage {
                "RCPT" => true,
                "DATA" | "message" => reply.starts_with("5.1."),
                _ => false,
            },
            _ => false,
        }
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
        rejected_at("RCPT", code, "no")
    }

    fn rejected_at(stage: &'static str, code: u16, reply: &str) -> SendError {
        SendError::Rejected {
            host: "mx.example.com".into(),
            stage,
            code,
            reply: reply.into(),
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
    fn bounce_only_for_bad_address() {
        assert!(!rejected_at("MAIL", 550, "5.1.7 bad sender").is_bounce());
        assert!(!rejected_at("message", 554, "5.7.1 spam").is_bounce());
        assert!(rejected_at("message", 550, "5.1.1 user unknown").is_bounce());
        assert!(rejected_at("DATA", 550, "5.1.1 user unknown").is_bounce());
        assert!(!rejected_at("MAIL", 550, "5.1.7 bad sender").is_transient());
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
