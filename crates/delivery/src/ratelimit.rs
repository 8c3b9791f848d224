//! A token bucket per destination domain.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Domains tracked before idle buckets are dropped, which bounds the memory used.
const MAX_TRACKED_DOMAINS: usize = 10_000;

/// Limits messages per second to each destination domain, allowing bursts of `burst`.
#[derive(Debug)]
pub(crate) struct DomainLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl DomainLimiter {
    /// A limiter of `per_second` messages per second per domain, `burst` at once.
    pub(crate) fn new(per_second: f64, burst: u32) -> DomainLimiter {
        DomainLimiter {
            per_second,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `domain` at `now` and returns how long the caller must wait
    /// before sending. The token is taken even when the wait is not zero, so callers that
    /// wait in parallel queue up one interval apart.
    pub(crate) fn reserve(&self, domain: &str, now: Instant) -> Duration {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_TRACKED_DOMAINS && !buckets.contains_key(domain) {
            let burst = self.burst;
            let per_second = self.per_second;
            buckets.retain(|_, bucket| bucket.refilled(now, per_second, burst).tokens < burst);
        }
        let bucket = buckets.entry(domain.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        *bucket = bucket.refilled(now, self.per_second, self.burst);
        bucket.tokens -= 1.0;
        if bucket.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-bucket.tokens / self.per_second)
        }
    }
}

impl Bucket {
    fn refilled(self, now: Instant, per_second: f64, burst: f64) -> Bucket {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        Bucket {
            tokens: (self.tokens + elapsed * per_second).min(burst),
            updated: now.max(self.updated),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_spaced_waits() {
        let limiter = DomainLimiter::new(10.0, 2);
        let start = Instant::now();
        assert_eq!(limiter.reserve("a.example", start), Duration::ZERO);
        assert_eq!(limiter.reserve("a.example", start), Duration::ZERO);
        assert_eq!(
            limiter.reserve("a.example", start),
            Duration::from_millis(100)
        );
        assert_eq!(
            limiter.reserve("a.example", start),
            Duration::from_millis(200)
        );
    }

    #[test]
    fn domains_have_separate_buckets() {
        let limiter = DomainLimiter::new(1.0, 1);
        let start = Instant::now();
        assert_eq!(limiter.reserve("a.example", start), Duration::ZERO);
        assert_eq!(limiter.reserve("b.example", start), Duration::ZERO);
        assert_eq!(limiter.reserve("a.example", start), Duration::from_secs(1));
    }

    #[test]
    fn tokens_refill_over_time() {
        let limiter = DomainLimiter::new(4.0, 1);
        let start = Instant::now();
        assert_eq!(limiter.reserve("a.example", start), Duration::ZERO);
        let later = start + Duration::from_millis(250);
        assert_eq!(limiter.reserve("a.example", later), Duration::ZERO);
    }
}
