//! "How much is too much?": response rate by number of contacts, and the cap it suggests.
//!
//! For every customer, the contacts that match a channel and purpose are numbered in time
//! order. A response (a signal of a chosen kind, `purchase` by default) is credited to the
//! latest matching contact at or before it. Only the first response counts. The response
//! rate of the k-th contact is then
//!
//! ```text
//! rate(k) = customers whose first response came at contact k
//!           / customers who received at least k contacts
//! ```
//!
//! which is the chance that one more contact gets an answer, given that the earlier ones
//! did not. The recommended cap is the smallest n for which rate(n + 1) falls below a
//! threshold: beyond n contacts, the next one is not worth making. Each rate comes with a
//! 95 % Wilson score interval, and the recommendation says whether the whole interval of
//! rate(n + 1) lies below the threshold.

use std::fmt;

use tact_domain::{Channel, Contact, Purpose, Signal, SignalKind};

/// z for a two-sided 95 % interval.
const Z_95: f64 = 1.959_963_984_540_054;

/// The contacts and the response an analysis counts, and its threshold.
#[derive(Debug, Clone)]
pub struct Question {
    /// Only contacts on this channel, or all channels.
    pub channel: Option<Channel>,
    /// Only contacts with this purpose, or all purposes.
    pub purpose: Option<Purpose>,
    /// The signal that counts as a response.
    pub response: SignalKind,
    /// The recommended cap is the smallest n whose next contact's rate is below this share.
    pub threshold: f64,
    /// Contact counts reached by fewer customers than this are shown but not used for the
    /// recommendation.
    pub min_customers: u64,
}

/// Counts for one contact number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    /// The contact number k, from 1.
    pub contact: u32,
    /// Customers who received at least k contacts.
    pub reached: u64,
    /// Customers whose first response came at contact k.
    pub responded: u64,
}

impl Row {
    /// `responded / reached`.
    pub fn rate(&self) -> f64 {
        if self.reached == 0 {
            return 0.0;
        }
        self.responded as f64 / self.reached as f64
    }

    /// The 95 % Wilson score interval of the rate.
    pub fn interval(&self) -> (f64, f64) {
        wilson_interval(self.responded, self.reached, Z_95)
    }
}

/// The Wilson score interval for `successes` out of `trials` at normal quantile `z`.
/// Returns `(0, 0)` for zero trials.
pub fn wilson_interval(successes: u64, trials: u64, z: f64) -> (f64, f64) {
    if trials == 0 {
        return (0.0, 0.0);
    }
    let n = trials as f64;
    let p = successes as f64 / n;
    let z2 = z * z;
    let denominator = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denominator;
    let half = z / denominator * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Accumulates customers one by one; memory grows with the largest contact count only.
#[derive(Debug, Default)]
pub struct Tally {
    /// `received[k]`: customers whose matching contact count is exactly k.
    received: Vec<u64>,
    /// `responded[k]`: customers whose first response came at contact k.
    responded: Vec<u64>,
    customers: u64,
}

impl Tally {
    /// Adds one customer's contacts and signals, both in time order.
    pub fn add_customer(&mut self, contacts: &[Contact], signals: &[Signal], question: &Question) {
        let matching: Vec<&Contact> = contacts
            .iter()
            .filter(|c| c.outcome.counts())
            .filter(|c| question.channel.as_ref().is_none_or(|ch| *ch == c.channel))
            .filter(|c| question.purpose.is_none_or(|p| p == c.purpose))
            .collect();
        if matching.is_empty() {
            return;
        }
        self.customers += 1;
        let first_response = signals
            .iter()
            .filter(|s| s.kind == question.response && !s.machine)
            .map(|s| matching.iter().filter(|c| c.at <= s.at).count())
            .find(|credited| *credited > 0);
        let count = matching.len();
        grow(&mut self.received, count);
        self.received[count] += 1;
        if let Some(at_contact) = first_response {
            grow(&mut self.responded, at_contact);
            self.responded[at_contact] += 1;
        }
    }

    /// Customers with at least one matching contact.
    pub fn customers(&self) -> u64 {
        self.customers
    }

    /// One row per contact number, from 1 to the largest count seen.
    pub fn rows(&self) -> Vec<Row> {
        let max = self.received.len().saturating_sub(1);
        let mut reached = self.customers;
        let mut rows = Vec::with_capacity(max);
        for k in 1..=max {
            rows.push(Row {
                contact: k as u32,
                reached,
                responded: self.responded.get(k).copied().unwrap_or(0),
            });
            reached -= self.received[k];
        }
        rows
    }
}

fn grow(counts: &mut Vec<u64>, index: usize) {
    if counts.len() <= index {
        counts.resize(index + 1, 0);
    }
}

/// The recommended cap and how sure it is.
#[derive(Debug, Clone, PartialEq)]
pub enum Recommendation {
    /// Stop after `cap` contacts: the next one's rate is below the threshold.
    Cap {
        /// The recommended maximum number of contacts.
        cap: u32,
        /// The row of contact `cap + 1`.
        next: Row,
        /// Whether the whole 95 % interval of the next rate is below the threshold.
        confident: bool,
    },
    /// No contact number with enough customers fell below the threshold.
    NoCap,
}

/// Finds the smallest n whose next contact's rate is below `question.threshold`, looking
/// only at rows reached by at least `question.min_customers` customers.
pub fn recommend(rows: &[Row], question: &Question) -> Recommendation {
    rows.iter()
        .filter(|row| row.contact >= 2 && row.reached >= question.min_customers)
        .find(|row| row.rate() < question.threshold)
        .map_or(Recommendation::NoCap, |next| Recommendation::Cap {
            cap: next.contact - 1,
            next: *next,
            confident: next.interval().1 < question.threshold,
        })
}

/// The analysis as a printable report.
#[derive(Debug)]
pub struct Report {
    /// Customers with at least one matching contact.
    pub customers: u64,
    /// One row per contact number.
    pub rows: Vec<Row>,
    /// The recommendation.
    pub recommendation: Recommendation,
    /// The threshold used.
    pub threshold: f64,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "customers contacted: {}", self.customers)?;
        writeln!(f, "contact  reached  responded    rate   95% interval")?;
        for row in &self.rows {
            let (low, high) = row.interval();
            writeln!(
                f,
                "{:>7} {:>8} {:>10} {:>6.2}%   {:.2}% – {:.2}%",
                row.contact,
                row.reached,
                row.responded,
                row.rate() * 100.0,
                low * 100.0,
                high * 100.0
            )?;
        }
        let threshold = self.threshold * 100.0;
        match &self.recommendation {
            Recommendation::Cap {
                cap,
                next,
                confident,
            } => {
                let (low, high) = next.interval();
                let sureness = if *confident {
                    "the whole 95% interval is below the threshold"
                } else {
                    "but the 95% interval still reaches the threshold, so more data is needed"
                };
                write!(
                    f,
                    "recommended cap: {cap} contacts. Contact {} gets a response {:.2}% of the \
                     time ({:.2}% – {:.2}%), below the {threshold:.2}% threshold; {sureness}.",
                    next.contact,
                    next.rate() * 100.0,
                    low * 100.0,
                    high * 100.0
                )
            }
            Recommendation::NoCap => write!(
                f,
                "no cap recommended: no contact number reached by enough customers has a \
                 response rate below {threshold:.2}%."
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, TimeZone, Utc};
    use tact_domain::{CustomerId, Outcome};

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, day, 10, 0, 0).unwrap()
    }

    fn call(day: u32) -> Contact {
        Contact {
            customer: CustomerId(1),
            channel: Channel::PHONE,
            purpose: Purpose::Sales,
            topic: None,
            campaign: None,
            at: at(day),
            duration_s: 60,
            outcome: Outcome::Answered,
        }
    }

    fn question() -> Question {
        Question {
            channel: Some(Channel::PHONE),
            purpose: Some(Purpose::Sales),
            response: SignalKind::Purchase,
            threshold: 0.3,
            min_customers: 1,
        }
    }

    #[test]
    fn wilson_interval_known_values() {
        let (low, high) = wilson_interval(5, 10, Z_95);
        assert!((low - 0.236_593).abs() < 1e-6, "{low}");
        assert!((high - 0.763_407).abs() < 1e-6, "{high}");
        assert_eq!(wilson_interval(0, 0, Z_95), (0.0, 0.0));
    }

    #[test]
    fn tally_credits_latest_contact() {
        let mut tally = Tally::default();
        let q = question();
        // Responds after the second of three calls.
        let purchase = Signal::new(SignalKind::Purchase, at(2) + chrono::Duration::hours(1));
        tally.add_customer(&[call(1), call(2), call(3)], &[purchase], &q);
        // Never responds to two calls.
        tally.add_customer(&[call(1), call(2)], &[], &q);
        // Responds to the first call.
        let purchase = Signal::new(SignalKind::Purchase, at(1));
        tally.add_customer(&[call(1)], &[purchase], &q);

        let rows = tally.rows();
        assert_eq!(
            rows,
            vec![
                Row {
                    contact: 1,
                    reached: 3,
                    responded: 1
                },
                Row {
                    contact: 2,
                    reached: 2,
                    responded: 1
                },
                Row {
                    contact: 3,
                    reached: 1,
                    responded: 0
                },
            ]
        );
    }

    #[test]
    fn recommend_first_rate_below_threshold() {
        let rows = [
            Row {
                contact: 1,
                reached: 100,
                responded: 40,
            },
            Row {
                contact: 2,
                reached: 60,
                responded: 24,
            },
            Row {
                contact: 3,
                reached: 36,
                responded: 3,
            },
            Row {
                contact: 4,
                reached: 33,
                responded: 0,
            },
        ];
        let recommendation = recommend(&rows, &question());
        assert_eq!(
            recommendation,
            Recommendation::Cap {
                cap: 2,
                next: rows[2],
                confident: true
            }
        );
    }

    #[test]
    fn recommend_none_when_rates_stay_high() {
        let rows = [
            Row {
                contact: 1,
                reached: 10,
                responded: 5,
            },
            Row {
                contact: 2,
                reached: 5,
                responded: 4,
            },
        ];
        assert_eq!(recommend(&rows, &question()), Recommendation::NoCap);
    }
}
