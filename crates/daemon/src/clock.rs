//! The one source of "now" for the whole binary.
//!
//! Every part of the daemon takes the time from a [`Clock`], so a simulated clock can drive
//! the same scheduler code over a year of data without sleeping. `clippy.toml` at the
//! workspace root forbids `Utc::now` and `SystemTime::now` everywhere else.

use chrono::{DateTime, Utc};
use std::fmt;
use std::sync::{Arc, Mutex};

/// A source of the current instant, in UTC.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Returns the current instant.
    fn now(&self) -> DateTime<Utc>;
}

/// A shared clock, as handed to the scheduler, the worker and the HTTP handlers.
pub type SharedClock = Arc<dyn Clock>;

/// The operating system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // The one permitted call to the wall clock.
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when the caller advances it, for simulations and tests.
#[derive(Debug)]
pub struct SimulatedClock {
    now: Mutex<DateTime<Utc>>,
}

impl SimulatedClock {
    /// Creates a clock stopped at `start`.
    pub fn new(start: DateTime<Utc>) -> SimulatedClock {
        SimulatedClock {
            now: Mutex::new(start),
        }
    }

    /// Moves the clock to `instant`; an instant in the past leaves the clock where it is,
    /// because time never runs backwards for the scheduler.
    pub fn advance_to(&self, instant: DateTime<Utc>) {
        let mut now = self
            .now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if instant > *now {
            *now = instant;
        }
    }
}

impl Clock for SimulatedClock {
    fn now(&self) -> DateTime<Utc> {
        *self
            .now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn simulated_clock_moves_forward_only() {
        let start = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
        let clock = SimulatedClock::new(start);

        clock.advance_to(start + chrono::Duration::hours(2));
        clock.advance_to(start);

        assert_eq!(
            clock.now(),
            Utc.with_ymd_and_hms(2026, 3, 1, 11, 0, 0).unwrap()
        );
    }
}
