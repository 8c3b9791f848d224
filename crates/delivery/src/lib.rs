//! Delivery for tact: turns an approved contact into a message and delivers it.
//!
//! Only an [`Outgoing`] message can be sent, and one can only be built around the domain's
//! [`Approval`](tact_domain::Approval), so code can send only what the rules approved. A
//! channel refuses an approval that has expired before anything leaves the process.
//!
//! - [`Channel`]: the trait every delivery channel implements, usable as `Arc<dyn Channel>`.
//! - [`EmailChannel`]: email over SMTP (lettre on tokio) with a bounded connection pool,
//!   TLS, authentication, timeouts and a rate limit per destination domain.
//! - [`MaildirChannel`]: writes each message into a Maildir, so tact runs with no mail server.
//! - [`Template`]: subject, plain text and HTML parts rendered per customer with minijinja.
//! - [`MessageConfig`] and [`build_email`]: headers (`List-Unsubscribe`, `Message-ID`, …)
//!   built only through lettre's typed headers.
//! - [`RetryPolicy`]: exponential backoff with jitter for transient failures.
//! - [`token`]: signed unsubscribe and preference links, and VERP bounce addresses.
//!
//! The crate holds no storage types and no scheduler: the daemon decides when to send and
//! records the outcome.
//!
//! ```
//! use tact_delivery::RetryPolicy;
//! use std::time::Duration;
//!
//! let policy = RetryPolicy {
//!     base: Duration::from_secs(60),
//!     max_delay: Duration::from_secs(3600),
//!     max_attempts: 5,
//! };
//! let delay = policy.delay_for(1).expect("attempt 1 of 5 may retry");
//! assert!(delay >= Duration::from_secs(60) && delay <= Duration::from_secs(120));
//! assert_eq!(policy.delay_for(5), None);
//! ```

#![warn(missing_docs)]

mod channel;
mod error;
mod maildir;
mod message;
mod ratelimit;
mod retry;
mod smtp;
mod template;
pub mod token;

pub use channel::{Channel, Outgoing, Ready, Receipt, Recipient};
pub use error::{Error, SendError};
pub use maildir::MaildirChannel;
pub use message::{Composer, Links, MessageConfig, build_email};
pub use retry::RetryPolicy;
pub use smtp::{EmailChannel, RateLimit, SmtpConfig, TlsMode};
pub use template::{BUILT_IN_VARIABLES, Rendered, Template, TemplateData, TemplateSource};
