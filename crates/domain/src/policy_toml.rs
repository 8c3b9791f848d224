//! Loading a policy from TOML, with errors that name the offending key.
//!
//! The text is checked key by key against the policy's schema before serde parses it, so
//! every error names the dotted key (`purpose_caps.sales.max`) rather than a line number.

use toml::{Table, Value};

use crate::{Bucket, Channel, Error, Period, Policy, Purpose, Span, Topic};

const TOP_KEYS: &[&str] = &[
    "approval_ttl",
    "overall",
    "channel_weights",
    "channel_caps",
    "purpose_caps",
    "min_gap",
    "buckets",
    "default_bucket",
    "reserved",
    "account",
    "care_grace",
    "declined_cooling",
    "negative",
    "ignored",
    "quiet_hours",
    "sales_share",
    "machine_open_within",
    "generic_greetings",
    "topics",
];

pub(crate) fn parse(text: &str) -> Result<Policy, Error> {
    let mut table: Table = text.parse().map_err(|error: toml::de::Error| {
        let line = error
            .span()
            .map(|span| text.get(..span.start).unwrap_or(text).matches('\n').count() + 1)
            .unwrap_or(1);
        Error::InvalidPolicy {
            key: "policy".to_owned(),
            value: String::new(),
            reason: format!("not valid TOML on line {line}: {}", error.message()),
        }
    })?;
    check_table(&mut table)?;
    Value::Table(table)
        .try_into()
        .map_err(|error: toml::de::Error| Error::InvalidPolicy {
            key: "policy".to_owned(),
            value: String::new(),
            reason: error.message().to_owned(),
        })
}

fn invalid(key: &str, value: &Value, reason: impl Into<String>) -> Error {
    let mut written = value.to_string();
    written.truncate(80);
    Error::InvalidPolicy {
        key: key.to_owned(),
        value: written,
        reason: reason.into(),
    }
}

fn unknown(key: &str, value: &Value, known: &[&str]) -> Error {
    invalid(
        key,
        value,
        format!("unknown key; known keys are {}", known.join(", ")),
    )
}

fn check_table(table: &mut Table) -> Result<(), Error> {
    for (key, value) in table.iter_mut() {
        match key.as_str() {
            "approval_ttl"
            | "min_gap"
            | "care_grace"
            | "declined_cooling"
            | "machine_open_within" => check_span(key, value)?,
            "overall" => check_limit(key, value)?,
            "channel_weights" => check_weights(value)?,
            "channel_caps" => check_named_limits(key, value, |name| Channel::parse(name).is_ok())?,
            "purpose_caps" => check_purpose_caps(value)?,
            "buckets" => check_buckets(value)?,
            "default_bucket" => check_bucket_name(key, value)?,
            "reserved" => check_section(key, value, &["care_and_value"], check_count)?,
            "account" => check_section(key, value, &["contacts", "call_minutes"], check_limit)?,
            "negative" => check_negative(value)?,
            "ignored" => check_section(key, value, &["emails"], check_count)?,
            "quiet_hours" => check_window(key, value)?,
            "sales_share" => check_share(value)?,
            "generic_greetings" => check_strings(key, value, |_| true)?,
            "topics" => check_strings(key, value, |name| Topic::parse(name).is_ok())?,
            _ => return Err(unknown(key, value, TOP_KEYS)),
        }
    }
    Ok(())
}

fn table_of<'v>(key: &str, value: &'v mut Value) -> Result<&'v mut Table, Error> {
    if !value.is_table() {
        return Err(invalid(key, value, "expected a table"));
    }
    Ok(value.as_table_mut().unwrap_or_else(|| unreachable!()))
}

fn check_section(
    key: &str,
    value: &mut Value,
    known: &[&str],
    check: fn(&str, &mut Value) -> Result<(), Error>,
) -> Result<(), Error> {
    for (name, entry) in table_of(key, value)? {
        let full = format!("{key}.{name}");
        if !known.contains(&name.as_str()) {
            return Err(unknown(&full, entry, known));
        }
        check(&full, entry)?;
    }
    Ok(())
}

fn check_span(key: &str, value: &mut Value) -> Result<(), Error> {
    match value.as_str().map(Span::parse) {
        Some(Ok(_)) => Ok(()),
        _ => Err(invalid(
            key,
            value,
            "not a span; write a whole number and a unit s, m, h, d or w, as in 30d",
        )),
    }
}

fn check_count(key: &str, value: &mut Value) -> Result<(), Error> {
    match value.as_integer() {
        Some(number) if (0..=i64::from(u32::MAX)).contains(&number) => Ok(()),
        _ => Err(invalid(key, value, "expected a whole number of 0 or more")),
    }
}

/// Checks a limit, written `{ max = N, per = "30d" }`. A missing or non-numeric `max` is rejected so that
/// a typo never becomes "never"; `max = 0` must be written out.
fn check_limit(key: &str, value: &mut Value) -> Result<(), Error> {
    let table = table_of(key, value)?;
    for (name, entry) in table.iter() {
        if name != "max" && name != "per" {
            return Err(unknown(&format!("{key}.{name}"), entry, &["max", "per"]));
        }
    }
    let max_key = format!("{key}.max");
    match table.get_mut("max") {
        None => {
            let reason = "missing; write max = 0 for never, or the maximum count";
            return Err(invalid(&max_key, &Value::String(String::new()), reason));
        }
        Some(max) => check_count(&max_key, max)?,
    }
    let per_key = format!("{key}.per");
    match table.get("per") {
        None => {
            let reason = "missing; write a span such as \"30d\" or calendar_month";
            Err(invalid(&per_key, &Value::String(String::new()), reason))
        }
        Some(per) => match per.as_str().map(Period::parse) {
            Some(Ok(_)) => Ok(()),
            _ => Err(invalid(
                &per_key,
                per,
                "not a period; write a whole number and a unit s, m, h, d or w, as in 30d, or \
                 calendar_day, calendar_week or calendar_month",
            )),
        },
    }
}

fn check_named_limits(
    key: &str,
    value: &mut Value,
    valid_name: fn(&str) -> bool,
) -> Result<(), Error> {
    for (name, entry) in table_of(key, value)? {
        let full = format!("{key}.{name}");
        if !valid_name(name) {
            return Err(invalid(
                &full,
                entry,
                format!("{name:?} is not a valid name"),
            ));
        }
        check_limit(&full, entry)?;
    }
    Ok(())
}

fn check_purpose_caps(value: &mut Value) -> Result<(), Error> {
    for (name, entry) in table_of("purpose_caps", value)? {
        let full = format!("purpose_caps.{name}");
        match Purpose::parse(name) {
            Some(Purpose::Transactional) => {
                return Err(invalid(
                    &full,
                    entry,
                    "transactional messages are never capped",
                ));
            }
            Some(_) => check_limit(&full, entry)?,
            None => {
                let reason = "unknown purpose; use care, sales, value or survey";
                return Err(invalid(&full, entry, reason));
            }
        }
    }
    Ok(())
}

fn check_weights(value: &mut Value) -> Result<(), Error> {
    for (name, entry) in table_of("channel_weights", value)? {
        let full = format!("channel_weights.{name}");
        if Channel::parse(name).is_err() {
            return Err(invalid(
                &full,
                entry,
                format!("{name:?} is not a valid channel name"),
            ));
        }
        match entry.as_integer() {
            Some(weight) if (1..=1_000).contains(&weight) => {}
            _ => {
                return Err(invalid(
                    &full,
                    entry,
                    "expected a whole number from 1 to 1000",
                ));
            }
        }
    }
    Ok(())
}

fn check_buckets(value: &mut Value) -> Result<(), Error> {
    let names = Bucket::ALL.map(Bucket::as_str);
    check_section("buckets", value, &names, check_limit)
}

fn check_bucket_name(key: &str, value: &mut Value) -> Result<(), Error> {
    match value.as_str().and_then(Bucket::parse) {
        Some(_) => Ok(()),
        None => Err(invalid(
            key,
            value,
            "expected weekly, monthly, quarterly, twice_a_year or yearly",
        )),
    }
}

fn check_negative(value: &mut Value) -> Result<(), Error> {
    let known = ["backoff", "window", "repeats_to_lower"];
    for (name, entry) in table_of("negative", value)? {
        let full = format!("negative.{name}");
        match name.as_str() {
            "backoff" | "window" => check_span(&full, entry)?,
            "repeats_to_lower" => check_count(&full, entry)?,
            _ => return Err(unknown(&full, entry, &known)),
        }
    }
    Ok(())
}

fn check_share(value: &mut Value) -> Result<(), Error> {
    let known = ["max_share", "over_last", "within"];
    let table = table_of("sales_share", value)?;
    for (name, entry) in table.iter_mut() {
        let full = format!("sales_share.{name}");
        match name.as_str() {
            "max_share" => {
                let share = entry.as_float().or(entry.as_integer().map(|n| n as f64));
                match share {
                    Some(share) if (0.0..=1.0).contains(&share) => *entry = Value::Float(share),
                    _ => return Err(invalid(&full, entry, "expected a share from 0 to 1")),
                }
            }
            "over_last" => match entry.as_integer() {
                Some(count) if (1..=1_000).contains(&count) => {}
                _ => {
                    return Err(invalid(
                        &full,
                        entry,
                        "expected a whole number from 1 to 1000",
                    ));
                }
            },
            "within" => check_span(&full, entry)?,
            _ => return Err(unknown(&full, entry, &known)),
        }
    }
    for required in ["max_share", "over_last"] {
        if !table.contains_key(required) {
            let full = format!("sales_share.{required}");
            return Err(invalid(&full, &Value::String(String::new()), "missing"));
        }
    }
    Ok(())
}

/// Checks a window, written `{ start = "08:00", end = "20:00", days = ["Mon", …] }`. Times may also be
/// TOML local times (`08:00:00`); both are rewritten as "HH:MM:SS" text for serde.
fn check_window(key: &str, value: &mut Value) -> Result<(), Error> {
    let known = ["start", "end", "days"];
    for (name, entry) in table_of(key, value)? {
        let full = format!("{key}.{name}");
        match name.as_str() {
            "start" | "end" => *entry = Value::String(local_time(&full, entry)?),
            "days" => check_strings(&full, entry, |day| day.parse::<chrono::Weekday>().is_ok())?,
            _ => return Err(unknown(&full, entry, &known)),
        }
    }
    let table = table_of(key, value)?;
    for required in ["start", "end"] {
        if !table.contains_key(required) {
            let full = format!("{key}.{required}");
            return Err(invalid(
                &full,
                &Value::String(String::new()),
                "missing; write HH:MM",
            ));
        }
    }
    Ok(())
}

fn local_time(key: &str, value: &Value) -> Result<String, Error> {
    let text = match value {
        Value::String(text) => text.clone(),
        Value::Datetime(datetime) if datetime.date.is_none() => datetime.to_string(),
        _ => String::new(),
    };
    let parsed = chrono::NaiveTime::parse_from_str(&text, "%H:%M:%S")
        .or_else(|_| chrono::NaiveTime::parse_from_str(&text, "%H:%M"));
    match parsed {
        Ok(time) => Ok(time.format("%H:%M:%S").to_string()),
        Err(_) => Err(invalid(
            key,
            value,
            "expected a local time such as \"08:00\"",
        )),
    }
}

fn check_strings(key: &str, value: &mut Value, valid: fn(&str) -> bool) -> Result<(), Error> {
    let Some(items) = value.as_array() else {
        return Err(invalid(key, value, "expected a list of strings"));
    };
    for item in items {
        match item.as_str() {
            Some(text) if valid(text) => {}
            _ => return Err(invalid(key, item, "invalid entry")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Limit, LocalWindow};
    use chrono::NaiveTime;

    fn key_of(text: &str) -> String {
        match parse(text) {
            Err(Error::InvalidPolicy { key, .. }) => key,
            other => panic!("expected an invalid policy, got {other:?}"),
        }
    }

    #[test]
    fn empty_text_gives_defaults() {
        assert_eq!(parse("").unwrap(), Policy::default());
    }

    #[test]
    fn full_policy_parses() {
        let text = r#"
            approval_ttl = "5m"
            overall = { max = 6, per = "calendar_month" }
            channel_weights = { phone = 4 }
            purpose_caps.sales = { max = 0, per = "30d" }
            quiet_hours = { start = 09:00:00, end = "18:30", days = ["Mon", "Tue"] }
            sales_share = { max_share = 0.3, over_last = 10 }
            negative = { backoff = "14d" }
        "#;

        let policy = parse(text).unwrap();

        assert_eq!(policy.approval_ttl, Span::seconds(300));
        assert_eq!(
            policy.overall,
            Some(Limit {
                max: 6,
                per: Period::Calendar(crate::CalendarUnit::Month)
            })
        );
        assert_eq!(policy.channel_weight(&Channel::PHONE), 4);
        assert_eq!(policy.purpose_caps[&Purpose::Sales].max, 0);
        assert_eq!(
            policy.quiet_hours,
            Some(LocalWindow {
                start: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
                end: NaiveTime::from_hms_opt(18, 30, 0).unwrap(),
                days: vec![chrono::Weekday::Mon, chrono::Weekday::Tue],
            })
        );
        assert_eq!(
            policy.sales_share.map(|share| share.within),
            Some(Span::days(180))
        );
        assert_eq!(policy.negative.backoff, Span::days(14));
        assert_eq!(policy.negative.window, Span::days(180));
    }

    #[test]
    fn default_policy_round_trips() {
        let text = toml::to_string(&Policy::default()).unwrap();

        assert_eq!(parse(&text).unwrap(), Policy::default());
    }

    #[test]
    fn empty_or_missing_max_rejected() {
        assert_eq!(
            key_of("purpose_caps.sales = { max = \"\", per = \"30d\" }"),
            "purpose_caps.sales.max"
        );
        assert_eq!(
            key_of("purpose_caps.sales = { per = \"30d\" }"),
            "purpose_caps.sales.max"
        );
        assert_eq!(
            key_of("overall = { max = -1, per = \"30d\" }"),
            "overall.max"
        );
    }

    #[test]
    fn unknown_keys_named() {
        assert_eq!(key_of("overal = { max = 3, per = \"30d\" }"), "overal");
        assert_eq!(key_of("negative = { backof = \"3d\" }"), "negative.backof");
        assert_eq!(
            key_of("buckets.daily = { max = 1, per = \"1d\" }"),
            "buckets.daily"
        );
        assert_eq!(
            key_of("account.contacts = { max = 1, per = \"7d\", cap = 2 }"),
            "account.contacts.cap"
        );
    }

    #[test]
    fn bad_spans_named() {
        assert_eq!(key_of("care_grace = \"7 days\""), "care_grace");
        assert_eq!(
            key_of("overall = { max = 3, per = \"monthly\" }"),
            "overall.per"
        );
        assert_eq!(
            key_of("sales_share = { max_share = 1.5, over_last = 3 }"),
            "sales_share.max_share"
        );
    }

    #[test]
    fn syntax_error_names_line() {
        let error = parse("min_gap = \"1d\"\novera ll = 3\n").unwrap_err();

        let Error::InvalidPolicy { reason, .. } = error else {
            panic!("expected an invalid policy, got {error:?}");
        };
        assert!(reason.starts_with("not valid TOML on line 2: "), "{reason}");
    }

    #[test]
    fn error_names_value_and_fix() {
        let error = parse("purpose_caps.sales = { max = \"\", per = \"30d\" }").unwrap_err();

        let expected = "invalid policy value for `purpose_caps.sales.max` (\"\"): expected a \
                        whole number of 0 or more";
        assert_eq!(error.to_string(), expected);
    }
}
