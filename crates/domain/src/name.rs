//! Open names: channels and topics are strings, so a new one needs no code change.

use serde::{Deserialize, Deserializer, Serialize};
use std::borrow::Cow;
use std::fmt;

use crate::Error;

/// Maximum length of a channel or topic name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

fn validate(kind: &'static str, value: &str) -> Result<(), Error> {
    let valid_chars = value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if value.is_empty() || value.len() > MAX_NAME_LEN || !valid_chars {
        return Err(Error::InvalidName {
            kind,
            value: value.chars().take(80).collect(),
        });
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        ///
        /// Names are 1 to 64 bytes of lower-case ASCII letters, digits, `_` and `-`.
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(Cow<'static, str>);

        impl $name {
            /// Parses a name.
            ///
            /// # Errors
            ///
            /// [`Error::InvalidName`] when the name is empty, longer than 64 bytes or holds
            /// anything but lower-case ASCII letters, digits, `_` and `-`.
            pub fn parse(value: &str) -> Result<Self, Error> {
                validate($kind, value)?;
                Ok(Self(Cow::Owned(value.to_owned())))
            }

            /// The name as written.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = Error;
            fn from_str(value: &str) -> Result<Self, Error> {
                Self::parse(value)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = String::deserialize(deserializer)?;
                Self::parse(&value).map_err(serde::de::Error::custom)
            }
        }
    };
}

name_type!(
    /// A contact channel such as `email`, `phone` or `sms`.
    Channel,
    "channel"
);
name_type!(
    /// A subject a customer can subscribe to or opt out of, such as `newsletter` or `offers`.
    Topic,
    "topic"
);

impl Channel {
    /// Email.
    pub const EMAIL: Channel = Channel(Cow::Borrowed("email"));
    /// A phone call.
    pub const PHONE: Channel = Channel(Cow::Borrowed("phone"));
    /// A text message.
    pub const SMS: Channel = Channel(Cow::Borrowed("sms"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_parse_accepts_lowercase() {
        assert_eq!(Channel::parse("email").unwrap(), Channel::EMAIL);
        assert_eq!(Channel::parse("push-2").unwrap().as_str(), "push-2");
    }

    #[test]
    fn channel_parse_rejects_bad_names() {
        for bad in ["", "Email", "e mail", "mail\n", &"x".repeat(65)] {
            let err = Channel::parse(bad).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::InvalidName {
                        kind: "channel",
                        ..
                    }
                ),
                "{bad:?}"
            );
        }
    }
}
