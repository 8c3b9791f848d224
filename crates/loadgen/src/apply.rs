//! Applying preference changes, opt-outs and care cases through the `tact-storage` API.
//!
//! `tact` imports customers, contacts and signals from CSV but has no bulk import of
//! preferences or care cases, so these go through [`Store::apply_consent`] and
//! [`Store::open_case`], one transaction per row, as the preference centre and the
//! `tact case open` command write them.

use anyhow::{Context as _, anyhow, bail};
use chrono::{DateTime, NaiveTime, Utc};
use std::path::Path;
use tact_domain::{
    Actor, Bucket, Channel, ConsentChange, ConsentMark, ConsentSource, Limit, LocalWindow, Period,
    Topic,
};
use tact_storage::Store;

/// Rows applied from each file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// Rows of preferences.csv.
    pub consent_changes: u64,
    /// Rows of cases.csv.
    pub cases: u64,
}

/// Applies preferences.csv and then cases.csv from `folder` to the database at `database`,
/// whose customers must already be imported. Every change is marked as made by the customer
/// at the row's `at`. Opt-outs are marked as coming from an unsubscribe link, and other
/// wishes as coming from the preference centre.
///
/// # Errors
///
/// Fails on the first row that names an unknown customer or holds an invalid change, with
/// the file and line; the rows before it stay applied.
pub fn apply(database: &Path, folder: &Path) -> anyhow::Result<Applied> {
    let store = Store::open(database)
        .with_context(|| format!("cannot open database {}", database.display()))?;
    let mut applied = Applied::default();

    let path = folder.join("preferences.csv");
    for_each_row(&path, |row| {
        let customer = store.customer_by_external_id(field(row, 0)?)?;
        let change = consent_change(field(row, 1)?, field(row, 2)?)?;
        let mark = ConsentMark {
            actor: Actor::Customer,
            source: source_of(&change),
            at: parse_instant(field(row, 3)?)?,
        };
        store.apply_consent(customer.id, &change, mark)?;
        applied.consent_changes += 1;
        Ok(())
    })?;

    let path = folder.join("cases.csv");
    for_each_row(&path, |row| {
        let customer = store.customer_by_external_id(field(row, 0)?)?;
        store.open_case(customer.id, parse_instant(field(row, 1)?)?)?;
        applied.cases += 1;
        Ok(())
    })?;
    Ok(applied)
}

/// Runs `work` on each data row of the CSV file at `path`, naming the file and line of the
/// first row that fails.
fn for_each_row(
    path: &Path,
    mut work: impl FnMut(&csv::StringRecord) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut row = csv::StringRecord::new();
    while reader
        .read_record(&mut row)
        .with_context(|| format!("cannot read {}", path.display()))?
    {
        let line = row.position().map_or(0, |position| position.line());
        work(&row).with_context(|| format!("{} line {line}", path.display()))?;
    }
    Ok(())
}

fn field(row: &csv::StringRecord, index: usize) -> anyhow::Result<&str> {
    row.get(index)
        .ok_or_else(|| anyhow!("missing column {}", index + 1))
}

fn parse_instant(text: &str) -> anyhow::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|instant| instant.with_timezone(&Utc))
        .with_context(|| format!("invalid instant {text:?}: use RFC 3339"))
}

fn source_of(change: &ConsentChange) -> ConsentSource {
    match change {
        ConsentChange::Marketing { .. }
        | ConsentChange::DoNotContact { .. }
        | ConsentChange::Channel { allowed: false, .. } => ConsentSource::Link,
        _ => ConsentSource::PreferenceCentre,
    }
}

/// Reads one change of preferences.csv: `bucket` (a bucket name), `cadence` (`MAX/SPAN`
/// such as `2/30d`), `topic_opt_out` and `channel_opt_out` (a name), `window`
/// (`HH:MM-HH:MM` in the customer's time zone), `pause` (the end, RFC 3339),
/// `marketing_opt_out` and `do_not_contact` (no value).
///
/// # Errors
///
/// Fails for an unknown change or an invalid value, naming both.
pub fn consent_change(change: &str, value: &str) -> anyhow::Result<ConsentChange> {
    let invalid = || format!("invalid value {value:?} for change {change:?}");
    let parsed = match change {
        "bucket" => ConsentChange::Bucket {
            bucket: Some(Bucket::parse(value).ok_or_else(|| anyhow!(invalid()))?),
        },
        "cadence" => ConsentChange::Cadence {
            limit: Some(parse_limit(value).with_context(invalid)?),
        },
        "topic_opt_out" => ConsentChange::Topic {
            topic: Topic::parse(value).with_context(invalid)?,
            allowed: false,
        },
        "channel_opt_out" => ConsentChange::Channel {
            channel: Channel::parse(value).with_context(invalid)?,
            allowed: false,
        },
        "window" => ConsentChange::Window {
            window: Some(parse_window(value).with_context(invalid)?),
        },
        "pause" => ConsentChange::Pause {
            until: Some(parse_instant(value)?),
        },
        "marketing_opt_out" => ConsentChange::Marketing { allowed: false },
        "do_not_contact" => ConsentChange::DoNotContact { value: true },
        other => bail!(
            "unknown change {other:?}: use bucket, cadence, topic_opt_out, channel_opt_out, \
             window, pause, marketing_opt_out or do_not_contact"
        ),
    };
    Ok(parsed)
}

fn parse_limit(text: &str) -> anyhow::Result<Limit> {
    let (max, per) = text
        .split_once('/')
        .ok_or_else(|| anyhow!("expected MAX/SPAN such as 2/30d"))?;
    Ok(Limit {
        max: max.parse()?,
        per: Period::parse(per)?,
    })
}

fn parse_window(text: &str) -> anyhow::Result<LocalWindow> {
    let (start, end) = text
        .split_once('-')
        .ok_or_else(|| anyhow!("expected HH:MM-HH:MM"))?;
    Ok(LocalWindow {
        start: NaiveTime::parse_from_str(start, "%H:%M")?,
        end: NaiveTime::parse_from_str(end, "%H:%M")?,
        days: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use tact_domain::Span;

    #[test]
    fn cadence_change_reads_limit() -> anyhow::Result<()> {
        let change = consent_change("cadence", "2/30d")?;

        let expected = Limit {
            max: 2,
            per: Period::Rolling(Span::days(30)),
        };
        assert_eq!(
            change,
            ConsentChange::Cadence {
                limit: Some(expected)
            }
        );
        Ok(())
    }

    #[test]
    fn window_change_reads_local_hours() -> anyhow::Result<()> {
        let change = consent_change("window", "18:00-22:00")?;

        let ConsentChange::Window {
            window: Some(window),
        } = change
        else {
            panic!("expected a window, got {change:?}");
        };
        assert_eq!(window.start, NaiveTime::from_hms_opt(18, 0, 0).unwrap());
        assert_eq!(window.end, NaiveTime::from_hms_opt(22, 0, 0).unwrap());
        assert!(window.days.is_empty());
        Ok(())
    }

    #[test]
    fn pause_change_reads_instant() -> anyhow::Result<()> {
        let change = consent_change("pause", "2026-12-24T08:00:00Z")?;

        let until = Utc.with_ymd_and_hms(2026, 12, 24, 8, 0, 0).unwrap();
        assert_eq!(change, ConsentChange::Pause { until: Some(until) });
        Ok(())
    }

    #[test]
    fn apply_stores_preferences_and_cases() -> anyhow::Result<()> {
        let folder = tempfile::tempdir()?;
        let database = folder.path().join("tact.db");
        std::fs::write(
            folder.path().join("preferences.csv"),
            "external_id,change,value,at\n\
             c1,bucket,quarterly,2026-06-01T10:00:00Z\n\
             c2,marketing_opt_out,,2026-06-02T10:00:00Z\n",
        )?;
        std::fs::write(
            folder.path().join("cases.csv"),
            "external_id,opened_at\nc2,2026-11-30T09:00:00Z\n",
        )?;
        let store = Store::open(&database)?;
        tact_storage::import::import_customers(&store, "external_id\nc1\nc2\n".as_bytes())?;

        let applied = apply(&database, folder.path())?;

        assert_eq!(
            applied,
            Applied {
                consent_changes: 2,
                cases: 1
            }
        );
        let first = store.customer_by_external_id("c1")?;
        assert_eq!(store.preferences(first.id)?.bucket, Some(Bucket::Quarterly));
        let second = store.customer_by_external_id("c2")?;
        let opt_out = store.preferences(second.id)?.marketing_opt_out;
        assert_eq!(opt_out.map(|mark| mark.source), Some(ConsentSource::Link));
        assert_eq!(store.history(second.id)?.cases.len(), 1);
        Ok(())
    }

    #[test]
    fn unknown_customer_names_line() -> anyhow::Result<()> {
        let folder = tempfile::tempdir()?;
        let database = folder.path().join("tact.db");
        std::fs::write(
            folder.path().join("preferences.csv"),
            "external_id,change,value,at\nc9,do_not_contact,,2026-06-01T10:00:00Z\n",
        )?;
        Store::open(&database)?;

        let error = apply(&database, folder.path()).unwrap_err();

        assert!(
            format!("{error:#}").contains("preferences.csv line 2: "),
            "{error:#}"
        );
        Ok(())
    }

    #[test]
    fn unknown_change_is_rejected() {
        let error = consent_change("holiday", "").unwrap_err();

        assert!(
            error.to_string().starts_with("unknown change \"holiday\""),
            "{error}"
        );
    }

    #[test]
    fn invalid_bucket_names_value() {
        let error = consent_change("bucket", "hourly").unwrap_err();

        assert_eq!(
            error.to_string(),
            "invalid value \"hourly\" for change \"bucket\""
        );
    }
}
