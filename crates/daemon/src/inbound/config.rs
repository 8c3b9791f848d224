//! The `[bounces]` table of the configuration.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use tact_domain::Span;

/// Settings for returned mail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BouncesConfig {
    /// Soft bounces of one customer within `soft_window` that suppress the address, counting
    /// every `bounced` signal on the email channel. Default 3.
    pub soft_limit: u32,
    /// The window `soft_limit` counts in, ending at the moment the latest bounce is read.
    /// Default `30d`.
    pub soft_window: Span,
    /// The folder that `tact ingest-mail --maildir DIR` moves each message to once its
    /// effects are stored: a Maildir++ folder, relative to DIR unless absolute, whose `cur` folder
    /// receives the message. Default `.processed`.
    pub processed_folder: PathBuf,
    /// Largest returned message read, in bytes. `POST /api/v1/inbound` rejects a larger body
    /// with 413; standard input and Maildir files are read up to this size and the rest is
    /// ignored. Default 26214400 (25 MiB).
    pub max_message_bytes: usize,
}

impl Default for BouncesConfig {
    fn default() -> Self {
        BouncesConfig {
            soft_limit: 3,
            soft_window: Span::days(30),
            processed_folder: PathBuf::from(".processed"),
            max_message_bytes: 25 * 1024 * 1024,
        }
    }
}

impl BouncesConfig {
    /// Checks the values that serde cannot.
    ///
    /// # Errors
    ///
    /// The dotted key and the reason, for a zero limit, an empty window or an empty folder.
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        if self.soft_limit == 0 {
            return Err(("bounces.soft_limit", "must be at least 1"));
        }
        if self.soft_window.duration() <= chrono::Duration::zero() {
            return Err(("bounces.soft_window", "must be longer than 0s"));
        }
        if self.processed_folder.as_os_str().is_empty() {
            return Err(("bounces.processed_folder", "must name a folder"));
        }
        if self.max_message_bytes == 0 {
            return Err(("bounces.max_message_bytes", "must be at least 1"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let config = BouncesConfig::default();

        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.max_message_bytes, 26_214_400);
    }

    #[test]
    fn zero_soft_limit_is_rejected() {
        let config = BouncesConfig {
            soft_limit: 0,
            ..BouncesConfig::default()
        };

        assert_eq!(
            config.validate(),
            Err(("bounces.soft_limit", "must be at least 1"))
        );
    }
}
