//! Signed link tokens and VERP bounce addresses.
//!
//! A link token proves that tact issued a link for one customer and one purpose, so the
//! unsubscribe and preference-centre pages need no login. It is URL-safe base64 (no padding)
//! of 34 bytes: a format version, the purpose, the customer id and the issue time in Unix
//! seconds, then the first 16 bytes of an HMAC-SHA256 over them. Verification compares the
//! MAC in constant time.
//!
//! A VERP envelope sender `bounces+<delivery-id>-<signature>@<domain>` maps returned mail
//! back to its delivery even when the bounce drops the original headers. The signature is
//! 10 lower-case hex digits, because some servers change the case of local parts.
//!
//! ```
//! use chrono::{Duration, TimeZone, Utc};
//! use tact_delivery::token::{LinkKey, LinkPurpose};
//! use tact_domain::CustomerId;
//!
//! let key = LinkKey::new(b"0123456789abcdef0123456789abcdef").unwrap();
//! let issued = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
//! let token = key.sign(LinkPurpose::Unsubscribe, CustomerId(42), issued);
//! let later = issued + Duration::days(3);
//! let customer = key.verify(&token, LinkPurpose::Unsubscribe, later, Duration::days(365));
//! assert_eq!(customer.unwrap(), CustomerId(42));
//! ```

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use tact_domain::{CustomerId, DeliveryId};

use crate::Error;

type HmacSha256 = Hmac<Sha256>;

const VERSION: u8 = 1;
const PAYLOAD_LEN: usize = 1 + 1 + 8 + 8;
const MAC_LEN: usize = 16;
const TOKEN_LEN: usize = PAYLOAD_LEN + MAC_LEN;
const VERP_SIGNATURE_BYTES: usize = 5;
/// Minimum secret length in bytes.
pub const MIN_SECRET_LEN: usize = 32;
/// Issue times further than this in the future are rejected, allowing for clock skew
/// between daemons.
const MAX_CLOCK_SKEW_SECONDS: i64 = 300;

/// The action a link allows its holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkPurpose {
    /// Unsubscribe from marketing, including one-click unsubscribe (RFC 8058).
    Unsubscribe,
    /// Open the preference centre.
    Preferences,
}

impl LinkPurpose {
    fn to_byte(self) -> u8 {
        match self {
            LinkPurpose::Unsubscribe => 1,
            LinkPurpose::Preferences => 2,
        }
    }

    fn from_byte(byte: u8) -> Option<LinkPurpose> {
        match byte {
            1 => Some(LinkPurpose::Unsubscribe),
            2 => Some(LinkPurpose::Preferences),
            _ => None,
        }
    }
}

/// The reason a token or VERP address was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not valid base64, the wrong length, an unknown version, or not a VERP address.
    #[error("malformed link token or bounce address")]
    Malformed,
    /// The signature does not match: the token was altered or signed with another key.
    #[error("invalid signature on link token or bounce address")]
    InvalidSignature,
    /// The token is genuine but for another purpose.
    #[error("link token is for {found:?}, not {expected:?}")]
    WrongPurpose {
        /// The purpose the caller requires.
        expected: LinkPurpose,
        /// The purpose in the token.
        found: LinkPurpose,
    },
    /// The token is older than the allowed age.
    #[error("link token issued at {issued_at} has expired; request a new link")]
    Expired {
        /// When it was issued.
        issued_at: DateTime<Utc>,
    },
    /// The token claims an issue time in the future.
    #[error("link token claims to be issued in the future, at {issued_at}")]
    IssuedInFuture {
        /// The claimed issue time.
        issued_at: DateTime<Utc>,
    },
}

/// The secret key that signs link tokens and VERP addresses. `Debug` does not show it.
#[derive(Clone)]
pub struct LinkKey {
    /// HMAC-SHA256 with the secret already mixed in, cloned for every signature so that
    /// signing hashes only the message.
    keyed: HmacSha256,
}

impl fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LinkKey(<redacted>)")
    }
}

impl LinkKey {
    /// A key from a secret of at least 32 bytes.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] when the secret is shorter than 32 bytes.
    pub fn new(secret: &[u8]) -> Result<LinkKey, Error> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(Error::InvalidConfig {
                key: "message.secret",
                reason: format!(
                    "the secret has {} bytes; use at least {MIN_SECRET_LEN} random bytes",
                    secret.len()
                ),
            });
        }
        let keyed =
            HmacSha256::new_from_slice(secret).expect("HMAC-SHA256 accepts a key of any length");
        Ok(LinkKey { keyed })
    }

    fn mac(&self, domain: &[u8], data: &[u8]) -> HmacSha256 {
        let mut mac = self.keyed.clone();
        mac.update(domain);
        mac.update(data);
        mac
    }

    /// Signs a token for `customer` and `purpose`, issued at `issued_at` (UTC, whole
    /// seconds; fractions are dropped).
    pub fn sign(
        &self,
        purpose: LinkPurpose,
        customer: CustomerId,
        issued_at: DateTime<Utc>,
    ) -> String {
        let mut bytes = Vec::with_capacity(TOKEN_LEN);
        bytes.push(VERSION);
        bytes.push(purpose.to_byte());
        bytes.extend_from_slice(&customer.0.to_be_bytes());
        bytes.extend_from_slice(&issued_at.timestamp().to_be_bytes());
        let tag = self.mac(b"tact-link\0", &bytes).finalize().into_bytes();
        bytes.extend_from_slice(&tag[..MAC_LEN]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Verifies a token and returns the customer it was issued for.
    ///
    /// A token is valid from its issue time (allowing 5 minutes of clock skew) until
    /// `max_age` after it.
    ///
    /// # Errors
    ///
    /// [`TokenError::Malformed`] for text that is not a token of this format (including a
    /// truncated one), [`TokenError::InvalidSignature`] for a tampered or foreign token,
    /// [`TokenError::WrongPurpose`], [`TokenError::Expired`] and
    /// [`TokenError::IssuedInFuture`].
    pub fn verify(
        &self,
        token: &str,
        purpose: LinkPurpose,
        now: DateTime<Utc>,
        max_age: Duration,
    ) -> Result<CustomerId, TokenError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| TokenError::Malformed)?;
        if bytes.len() != TOKEN_LEN || bytes[0] != VERSION {
            return Err(TokenError::Malformed);
        }
        let (payload, tag) = bytes.split_at(PAYLOAD_LEN);
        self.mac(b"tact-link\0", payload)
            .verify_truncated_left(tag)
            .map_err(|_| TokenError::InvalidSignature)?;

        let found = LinkPurpose::from_byte(payload[1]).ok_or(TokenError::Malformed)?;
        if found != purpose {
            return Err(TokenError::WrongPurpose {
                expected: purpose,
                found,
            });
        }
        let customer = i64::from_be_bytes(payload[2..10].try_into().expect("8 bytes"));
        let issued = i64::from_be_bytes(payload[10..18].try_into().expect("8 bytes"));
        let issued_at = DateTime::from_timestamp(issued, 0).ok_or(TokenError::Malformed)?;
        check_age(issued_at, now, max_age)?;
        Ok(CustomerId(customer))
    }

    fn verp_signature(&self, delivery: DeliveryId) -> String {
        let tag = self
            .mac(b"tact-verp\0", &delivery.0.to_be_bytes())
            .finalize()
            .into_bytes();
        tag[..VERP_SIGNATURE_BYTES]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }

    /// The VERP envelope sender `bounces+<delivery-id>-<signature>@<domain>` for a delivery.
    ///
    /// `domain` should be a domain whose mail for `bounces+…` reaches tact's bounce handler.
    pub fn verp_address(&self, delivery: DeliveryId, domain: &str) -> String {
        format!(
            "bounces+{}-{}@{domain}",
            delivery.0,
            self.verp_signature(delivery)
        )
    }

    /// Parses a VERP address made by [`LinkKey::verp_address`] and returns its delivery.
    /// The local part is compared ignoring case; the domain is not checked.
    ///
    /// # Errors
    ///
    /// [`TokenError::Malformed`] when the address does not have the VERP form and
    /// [`TokenError::InvalidSignature`] when the signature does not match the delivery id.
    pub fn parse_verp(&self, address: &str) -> Result<DeliveryId, TokenError> {
        let local = address.rsplit_once('@').map_or(address, |(local, _)| local);
        let local = local.to_ascii_lowercase();
        let rest = local
            .strip_prefix("bounces+")
            .ok_or(TokenError::Malformed)?;
        let (id, signature) = rest.split_once('-').ok_or(TokenError::Malformed)?;
        let id: i64 = id.parse().map_err(|_| TokenError::Malformed)?;
        if signature.len() != VERP_SIGNATURE_BYTES * 2 {
            return Err(TokenError::Malformed);
        }
        let delivery = DeliveryId(id);
        let expected = self.verp_signature(delivery);
        if !constant_time_eq(expected.as_bytes(), signature.as_bytes()) {
            return Err(TokenError::InvalidSignature);
        }
        Ok(delivery)
    }
}

fn check_age(
    issued_at: DateTime<Utc>,
    now: DateTime<Utc>,
    max_age: Duration,
) -> Result<(), TokenError> {
    if issued_at > now + Duration::seconds(MAX_CLOCK_SKEW_SECONDS) {
        return Err(TokenError::IssuedInFuture { issued_at });
    }
    if now > issued_at + max_age {
        return Err(TokenError::Expired { issued_at });
    }
    Ok(())
}

fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    left.len() == right.len()
        && left
            .iter()
            .zip(right)
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn key() -> LinkKey {
        LinkKey::new(b"0123456789abcdef0123456789abcdef").unwrap()
    }

    fn issued() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()
    }

    fn verify(token: &str, purpose: LinkPurpose) -> Result<CustomerId, TokenError> {
        key().verify(token, purpose, issued(), Duration::days(30))
    }

    #[test]
    fn token_round_trips_customer() {
        let token = key().sign(LinkPurpose::Preferences, CustomerId(-7), issued());
        assert_eq!(token.len(), 46);
        assert_eq!(verify(&token, LinkPurpose::Preferences), Ok(CustomerId(-7)));
    }

    #[test]
    fn token_tampered_is_rejected() {
        let token = key().sign(LinkPurpose::Unsubscribe, CustomerId(42), issued());
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        bytes[9] ^= 1;
        let tampered = URL_SAFE_NO_PAD.encode(bytes);
        assert_eq!(
            verify(&tampered, LinkPurpose::Unsubscribe),
            Err(TokenError::InvalidSignature)
        );
    }

    #[test]
    fn token_truncated_is_malformed() {
        let token = key().sign(LinkPurpose::Unsubscribe, CustomerId(42), issued());
        for cut in [0, 1, 20, token.len() - 1] {
            assert_eq!(
                verify(&token[..cut], LinkPurpose::Unsubscribe),
                Err(TokenError::Malformed),
                "{cut}"
            );
        }
        assert_eq!(
            verify("not a token!", LinkPurpose::Unsubscribe),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn token_foreign_purpose_is_rejected() {
        let token = key().sign(LinkPurpose::Preferences, CustomerId(42), issued());
        assert_eq!(
            verify(&token, LinkPurpose::Unsubscribe),
            Err(TokenError::WrongPurpose {
                expected: LinkPurpose::Unsubscribe,
                found: LinkPurpose::Preferences,
            })
        );
    }

    #[test]
    fn token_other_key_is_rejected() {
        let other = LinkKey::new(b"another secret of thirty-two byt").unwrap();
        let token = other.sign(LinkPurpose::Unsubscribe, CustomerId(42), issued());
        assert_eq!(
            verify(&token, LinkPurpose::Unsubscribe),
            Err(TokenError::InvalidSignature)
        );
    }

    #[test]
    fn token_expiry_and_future_checked() {
        let key = key();
        let token = key.sign(LinkPurpose::Unsubscribe, CustomerId(1), issued());
        let max_age = Duration::days(30);
        let at_limit = issued() + max_age;
        assert_eq!(
            key.verify(&token, LinkPurpose::Unsubscribe, at_limit, max_age),
            Ok(CustomerId(1))
        );
        let past = at_limit + Duration::seconds(1);
        assert_eq!(
            key.verify(&token, LinkPurpose::Unsubscribe, past, max_age),
            Err(TokenError::Expired {
                issued_at: issued()
            })
        );
        let early = issued() - Duration::minutes(6);
        assert_eq!(
            key.verify(&token, LinkPurpose::Unsubscribe, early, max_age),
            Err(TokenError::IssuedInFuture {
                issued_at: issued()
            })
        );
    }

    #[test]
    fn short_secret_is_rejected() {
        let error = LinkKey::new(b"short").unwrap_err();
        assert!(matches!(
            error,
            Error::InvalidConfig {
                key: "message.secret",
                ..
            }
        ));
    }

    #[test]
    fn verp_round_trips_delivery() {
        let key = key();
        let address = key.verp_address(DeliveryId(1234), "bounce.example.com");
        let signature = key.verp_signature(DeliveryId(1234));
        assert_eq!(
            address,
            format!("bounces+1234-{signature}@bounce.example.com")
        );
        assert_eq!(signature.len(), 10);
        assert_eq!(key.parse_verp(&address), Ok(DeliveryId(1234)));
        assert_eq!(
            key.parse_verp(&address.to_ascii_uppercase()),
            Ok(DeliveryId(1234))
        );
    }

    #[test]
    fn verp_forged_id_is_rejected() {
        let key = key();
        let address = key.verp_address(DeliveryId(1234), "example.com");
        let forged = address.replace("+1234-", "+1235-");
        assert_eq!(key.parse_verp(&forged), Err(TokenError::InvalidSignature));
        assert_eq!(
            key.parse_verp("someone@example.com"),
            Err(TokenError::Malformed)
        );
        assert_eq!(
            key.parse_verp("bounces+12-abc@example.com"),
            Err(TokenError::Malformed)
        );
    }
}
