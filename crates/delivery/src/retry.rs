//! Exponential backoff with jitter for transient send failures.

use rand::Rng;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// When to try a transiently failed message again.
///
/// Attempt `n` (1 for the first send) that failed is followed, after
/// [`RetryPolicy::delay_for`], by attempt `n + 1`, up to `max_attempts` attempts in all.
/// The caller persists the next attempt time; this type keeps no state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Delay after the first failed attempt, before jitter. Default 60 seconds.
    #[serde(with = "seconds")]
    pub base: Duration,
    /// Upper bound of any delay, jitter included. Default 6 hours.
    #[serde(with = "seconds")]
    pub max_delay: Duration,
    /// Attempts in all, the first send included. Default 8.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_secs(60),
            max_delay: Duration::from_secs(6 * 3600),
            max_attempts: 8,
        }
    }
}

impl RetryPolicy {
    /// The delay to wait after failed attempt `attempt` (1-based), or `None` when no attempt
    /// is left.
    ///
    /// The delay is `base * 2^(attempt - 1)` plus a random jitter of up to the same amount
    /// again, so it lies in `[d, 2d]` for `d = base * 2^(attempt - 1)`, and never exceeds
    /// `max_delay`. Jitter spreads the retries of a batch that failed together.
    pub fn delay_for(&self, attempt: u32) -> Option<Duration> {
        if attempt == 0 || attempt >= self.max_attempts {
            return None;
        }
        let jitter = rand::thread_rng().gen_range(0.0..=1.0);
        Some(self.delay_with_jitter(attempt, jitter))
    }

    /// The delay for `attempt` with a given jitter fraction in `[0, 1]`.
    fn delay_with_jitter(&self, attempt: u32, jitter: f64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(32);
        let doubled = self.base.saturating_mul(1u32 << exponent.min(31));
        let spread = doubled.mul_f64(jitter.clamp(0.0, 1.0));
        doubled.saturating_add(spread).min(self.max_delay)
    }
}

mod seconds {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(value.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_secs(10),
            max_delay: Duration::from_secs(300),
            max_attempts: 6,
        }
    }

    #[test]
    fn delay_doubles_per_attempt() {
        let policy = policy();
        assert_eq!(policy.delay_with_jitter(1, 0.0), Duration::from_secs(10));
        assert_eq!(policy.delay_with_jitter(2, 0.0), Duration::from_secs(20));
        assert_eq!(policy.delay_with_jitter(3, 0.0), Duration::from_secs(40));
        assert_eq!(policy.delay_with_jitter(3, 1.0), Duration::from_secs(80));
        assert_eq!(policy.delay_with_jitter(3, 0.5), Duration::from_secs(60));
    }

    #[test]
    fn delay_capped_at_max_delay() {
        let policy = policy();
        assert_eq!(policy.delay_with_jitter(5, 1.0), Duration::from_secs(300));
        assert_eq!(policy.delay_with_jitter(40, 0.0), Duration::from_secs(300));
    }

    #[test]
    fn delay_for_stops_at_max_attempts() {
        let policy = policy();
        assert_eq!(policy.delay_for(0), None);
        assert_eq!(policy.delay_for(6), None);
        for _ in 0..100 {
            let delay = policy.delay_for(2).unwrap();
            assert!(delay >= Duration::from_secs(20), "{delay:?}");
            assert!(delay <= Duration::from_secs(40), "{delay:?}");
        }
    }
}
