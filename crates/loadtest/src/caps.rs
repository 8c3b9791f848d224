//! Reads the contacts recorded since the run started and counts, per customer, the pairs
//! closer than the minimum gap and the windows with more contacts than the cap.

use anyhow::Context as _;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// Customers whose contacts break a cap, counted by cap.
#[derive(Debug, Default)]
pub struct Violations {
    /// Customers with at least one contact recorded during the run.
    pub customers: usize,
    /// Contacts recorded during the run.
    pub contacts: usize,
    /// Customers with two contacts closer than the minimum gap.
    pub gap: usize,
    /// Customers with more contacts in one window than the cap.
    pub window: usize,
}

impl Violations {
    pub fn is_clean(&self) -> bool {
        self.gap == 0 && self.window == 0
    }
}

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "caps check: {} contacts for {} customers; {} customers below the minimum gap, \
             {} over the window cap",
            self.contacts, self.customers, self.gap, self.window
        )
    }
}

/// Checks every customer's contacts at or after `since_ms` (Unix milliseconds) together
/// with the earlier ones that fall in the same windows.
///
/// # Errors
///
/// Fails when the database cannot be opened or read.
pub fn check(
    database: &Path,
    since_ms: i64,
    min_gap_s: i64,
    max_contacts: usize,
    window_s: i64,
) -> anyhow::Result<Violations> {
    let connection =
        rusqlite::Connection::open_with_flags(database, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("cannot open {}", database.display()))?;
    let mut statement = connection.prepare(
        "SELECT customer_id, at_ms FROM contacts WHERE customer_id IN \
         (SELECT customer_id FROM contacts WHERE at_ms >= ?1) AND at_ms >= ?2 \
         ORDER BY customer_id, at_ms",
    )?;
    let earliest = since_ms - window_s.max(min_gap_s) * 1000;
    let mut per_customer: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    let rows = statement.query_map([since_ms, earliest], |row| Ok((row.get(0)?, row.get(1)?)))?;
    for row in rows {
        let (customer, at_ms): (i64, i64) = row?;
        per_customer.entry(customer).or_default().push(at_ms);
    }

    let mut violations = Violations {
        customers: per_customer.len(),
        ..Violations::default()
    };
    for times in per_customer.values() {
        violations.contacts += times.iter().filter(|at| **at >= since_ms).count();
        if times
            .windows(2)
            .any(|pair| pair[1] - pair[0] < min_gap_s * 1000)
        {
            violations.gap += 1;
        }
        let over = times.iter().enumerate().any(|(start, first)| {
            let in_window = times[start..]
                .iter()
                .take_while(|at| **at - first < window_s * 1000)
                .count();
            in_window > max_contacts
        });
        if over {
            violations.window += 1;
        }
    }
    Ok(violations)
}
