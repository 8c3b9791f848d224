use chrono_tz::Tz;
use serde_json::json;
use tact_domain::{Channel, Outcome, Purpose, SignalKind, Topic};
use tact_storage::Error;
use tact_storage::import::{
    ImportReport, Rejection, import_contacts, import_customers, import_signals,
};

use crate::common::{TestResult, temp_store, utc};

const CUSTOMERS: &str = "\
external_id,name,email,phone,timezone,locale,account,plan
c1,Ann Lee,ann@example.com,+49 30 1234,Europe/Berlin,de-DE,Acme,gold
c2,Bob,bob@example.com,,Mars/Olympus,,,
c3,Carl,carl(at)example.com,,,,,
\"c4\",\"Dora\rBcc: x@example.com\",dora@example.com,,,,,
c1,Ann Again,ann@example.com,,,,,
c5,Eve,,,,,Acme,silver
c6,Fay,fay@example.com,,,,,,extra
,Nobody,,,,,,
";

fn rejection(line: u64, reason: &str) -> Rejection {
    Rejection {
        line,
        reason: reason.to_owned(),
    }
}

#[test]
fn customers_import_rejects_non_utf8_row() -> TestResult {
    let (_folder, store) = temp_store()?;
    let file = b"external_id,name\nc1,Ann\nc2,B\xffb\nc3,Cy\n";

    let report = import_customers(&store, &file[..])?;

    assert_eq!(report.inserted, 2);
    assert_eq!(
        report.rejected,
        [rejection(
            3,
            "field 2 is not valid UTF-8; save the file as UTF-8"
        )]
    );
    Ok(())
}

#[test]
fn customers_import_reports_bad_rows() -> TestResult {
    let (_folder, store) = temp_store()?;

    let report = import_customers(&store, CUSTOMERS.as_bytes())?;

    assert_eq!(report.inserted, 2);
    assert_eq!(report.updated, 0);
    assert_eq!(report.unchanged, 0);
    let lines: Vec<u64> = report.rejected.iter().map(|r| r.line).collect();
    assert_eq!(lines, vec![3, 4, 5, 6, 8, 9]);
    assert_eq!(
        report.rejected[0],
        rejection(
            3,
            "unknown time zone \"Mars/Olympus\": use an IANA name such as Europe/Berlin"
        )
    );
    assert_eq!(
        report.rejected[1],
        rejection(
            4,
            "invalid email \"carl(at)example.com\": it is not a valid email address such as \
             ann@example.com"
        )
    );
    assert!(
        report.rejected[2]
            .reason
            .starts_with("invalid name \"Dora\\rBcc"),
        "{:?}",
        report.rejected[2]
    );
    assert!(
        report.rejected[2]
            .reason
            .ends_with("control character '\\r'; remove it")
    );
    assert_eq!(
        report.rejected[3],
        rejection(
            6,
            "duplicate external_id \"c1\": it appears on an earlier line of this file"
        )
    );
    assert_eq!(
        report.rejected[4],
        rejection(
            8,
            "the row has 9 fields but the header has 8; quote values that contain commas"
        )
    );
    assert_eq!(report.rejected[5], rejection(9, "missing external_id"));

    let ann = store.customer_by_external_id("c1")?;
    assert_eq!(ann.name.as_deref(), Some("Ann Lee"));
    assert_eq!(ann.phone.as_deref(), Some("+49 30 1234"));
    assert_eq!(ann.time_zone, Tz::Europe__Berlin);
    assert_eq!(ann.locale, "de-DE");
    let eve = store.customer_by_external_id("c5")?;
    assert_eq!(eve.account, ann.account);
    assert_eq!(eve.time_zone, Tz::UTC);
    assert_eq!(eve.locale, "en");
    assert_eq!(
        store.customer_fields(ann.id)?.get("plan"),
        Some(&json!("gold"))
    );
    assert_eq!(
        store.customer_fields(eve.id)?.get("plan"),
        Some(&json!("silver"))
    );
    Ok(())
}

#[test]
fn customers_reimport_changes_nothing() -> TestResult {
    let (_folder, store) = temp_store()?;
    import_customers(&store, CUSTOMERS.as_bytes())?;
    let before = store.customer_by_external_id("c1")?;

    let report = import_customers(&store, CUSTOMERS.as_bytes())?;

    assert_eq!(
        (report.inserted, report.updated, report.unchanged),
        (0, 0, 2)
    );
    assert_eq!(report.rejected.len(), 6);
    assert_eq!(store.customer_by_external_id("c1")?, before);
    let changed = "external_id,name\nc1,Ann Lee-Smith\n";
    let report = import_customers(&store, changed.as_bytes())?;
    assert_eq!(
        (report.inserted, report.updated, report.unchanged),
        (0, 1, 0)
    );
    Ok(())
}

#[test]
fn customers_header_needs_external_id() -> TestResult {
    let (_folder, store) = temp_store()?;

    let error = import_customers(&store, "id,name\n1,Ann\n".as_bytes()).unwrap_err();

    assert!(
        matches!(
            error,
            Error::InvalidField {
                field: "CSV header",
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(
        error.to_string(),
        "invalid CSV header \"id,name\": the header must name the columns external_id"
    );
    Ok(())
}

#[test]
fn contacts_import_and_reimport() -> TestResult {
    let (_folder, store) = temp_store()?;
    import_customers(&store, "external_id\nc1\nc2\n".as_bytes())?;
    let csv = "\
external_id,channel,purpose,topic,at,duration_s,outcome
c1,email,value,newsletter,2026-03-01T09:30:00Z,,
c1,phone,sales,,2026-03-02T10:00:00+01:00,240,answered
c9,email,value,,2026-03-01T09:30:00Z,,
c2,email,value,,01/03/2026,,
c2,fax machine,value,,2026-03-01T09:30:00Z,,
c2,email,bragging,,2026-03-01T09:30:00Z,,
c2,email,value,,2026-03-01T09:30:00Z,-5,
c2,email,value,,2026-03-01T09:30:00Z,,lost
";

    let first = import_contacts(&store, csv.as_bytes())?;
    let second = import_contacts(&store, csv.as_bytes())?;

    assert_eq!(first.inserted, 2);
    assert_eq!(second.inserted, 0);
    assert_eq!(second.unchanged, 2);
    assert_eq!(first.rejected, second.rejected);
    let reasons: Vec<(u64, &str)> = first
        .rejected
        .iter()
        .map(|r| (r.line, r.reason.as_str()))
        .collect();
    assert_eq!(
        reasons[0],
        (4, "unknown external_id \"c9\": import the customer first")
    );
    assert_eq!(
        reasons[1],
        (
            5,
            "invalid date in column at: \"01/03/2026\" is not RFC 3339, such as \
             2026-03-01T09:30:00Z"
        )
    );
    assert!(
        reasons[2]
            .1
            .starts_with("invalid channel name \"fax machine\""),
        "{reasons:?}"
    );
    assert_eq!(
        reasons[3],
        (
            7,
            "invalid purpose \"bragging\": use care, sales, value, survey or transactional"
        )
    );
    assert_eq!(
        reasons[4],
        (8, "invalid duration_s \"-5\": use whole seconds such as 90")
    );
    assert_eq!(reasons[5].0, 9);
    assert_eq!(reasons.len(), 6);

    let c1 = store.customer_by_external_id("c1")?;
    let contacts = store.history(c1.id)?.contacts;
    assert_eq!(contacts.len(), 2);
    assert_eq!(contacts[0].1.topic, Some(Topic::parse("newsletter")?));
    assert_eq!(contacts[0].1.outcome, Outcome::Sent);
    assert_eq!(contacts[1].1.channel, Channel::PHONE);
    assert_eq!(contacts[1].1.purpose, Purpose::Sales);
    assert_eq!(contacts[1].1.at, utc(2026, 3, 2, 9, 0));
    assert_eq!(contacts[1].1.duration_s, 240);
    assert_eq!(contacts[1].1.outcome, Outcome::Answered);
    Ok(())
}

#[test]
fn signals_import_and_reimport() -> TestResult {
    let (_folder, store) = temp_store()?;
    import_customers(&store, "external_id\nc1\n".as_bytes())?;
    let csv = "\
external_id,kind,channel,at,topic,value,machine
c1,opened,email,2026-03-01T09:30:00Z,,,true
c1,purchase,,2026-03-02T09:30:00Z,shoes,19.99,
c1,waved,email,2026-03-01T09:30:00Z,,,
c1,purchase,,2026-03-02T09:30:00Z,,lots,
c1,opened,email,2026-03-03T09:30:00Z,,,maybe
";

    let first = import_signals(&store, csv.as_bytes())?;
    let second = import_signals(&store, csv.as_bytes())?;

    assert_eq!((first.inserted, first.unchanged), (2, 0));
    assert_eq!((second.inserted, second.unchanged), (0, 2));
    let lines: Vec<u64> = first.rejected.iter().map(|r| r.line).collect();
    assert_eq!(lines, vec![4, 5, 6]);
    assert!(
        first.rejected[0]
            .reason
            .starts_with("invalid kind \"waved\": use one of complaint")
    );
    assert_eq!(
        first.rejected[1].reason,
        "invalid value \"lots\": use a number such as 19.99"
    );
    assert_eq!(
        first.rejected[2].reason,
        "invalid machine \"maybe\": use true or false"
    );

    let signals = store
        .history(store.customer_by_external_id("c1")?.id)?
        .signals;
    assert_eq!(signals.len(), 2);
    assert_eq!(signals[0].kind, SignalKind::Opened);
    assert!(signals[0].machine);
    assert_eq!(signals[1].value, Some(19.99));
    assert_eq!(signals[1].topic, Some(Topic::parse("shoes")?));
    Ok(())
}

#[test]
fn import_commits_in_batches() -> TestResult {
    let (_folder, store) = temp_store()?;
    let mut csv = String::from("external_id,email\n");
    let rows = tact_storage::import::BATCH_ROWS * 2 + 17;
    for index in 0..rows {
        csv.push_str(&format!("c{index},c{index}@example.com\n"));
    }

    let report = import_customers(&store, csv.as_bytes())?;

    let expected = ImportReport {
        inserted: rows as u64,
        ..ImportReport::default()
    };
    assert_eq!(report, expected);
    assert_eq!(
        store
            .customer_by_external_id(&format!("c{}", rows - 1))?
            .external_id,
        format!("c{}", rows - 1)
    );
    Ok(())
}

#[test]
fn contacts_import_keeps_first_duplicate() -> TestResult {
    let (_folder, store) = temp_store()?;
    import_customers(&store, "external_id\nc1\nc2\n".as_bytes())?;
    let csv = "\
external_id,channel,purpose,topic,at,duration_s,outcome
c2,phone,sales,,2026-03-01T09:30:00Z,60,no_answer
c1,phone,sales,,2026-03-01T09:30:00Z,60,no_answer
c1,phone,sales,,2026-03-01T09:30:00Z,0,failed
c1,phone,sales,,2026-03-01T08:00:00Z,30,answered
";

    let report = import_contacts(&store, csv.as_bytes())?;

    assert_eq!(report.inserted, 3);
    assert_eq!(report.unchanged, 1);
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    let c1 = store.customer_by_external_id("c1")?;
    let contacts = store.history(c1.id)?.contacts;
    assert_eq!(contacts.len(), 2);
    assert_eq!(contacts[0].1.at, utc(2026, 3, 1, 8, 0));
    assert_eq!(contacts[0].1.outcome, Outcome::Answered);
    assert_eq!(contacts[1].1.at, utc(2026, 3, 1, 9, 30));
    assert_eq!(contacts[1].1.duration_s, 60);
    assert_eq!(contacts[1].1.outcome, Outcome::NoAnswer);
    Ok(())
}

#[test]
fn contacts_import_spans_several_transactions() -> TestResult {
    let (_folder, store) = temp_store()?;
    let mut customers = String::from("external_id\n");
    for index in 0..1_000 {
        customers.push_str(&format!("c{index}\n"));
    }
    import_customers(&store, customers.as_bytes())?;
    // Time order, as history exports come: consecutive rows belong to different customers.
    let rows = tact_storage::import::BATCH_ROWS * 2 + 17;
    let mut csv = String::from("external_id,channel,purpose,at\n");
    let start = utc(2020, 1, 1, 0, 0);
    for row in 0..rows {
        let at = start + chrono::Duration::minutes(row as i64);
        let at = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        csv.push_str(&format!("c{},email,value,{at}\n", row % 1_000));
    }

    let report = import_contacts(&store, csv.as_bytes())?;

    let expected = ImportReport {
        inserted: rows as u64,
        ..ImportReport::default()
    };
    assert_eq!(report, expected);
    let count = |external_id: &str| -> Result<usize, Error> {
        let customer = store.customer_by_external_id(external_id)?;
        Ok(store.history(customer.id)?.contacts.len())
    };
    assert_eq!(count("c0")?, 101);
    assert_eq!(count("c16")?, 101);
    assert_eq!(count("c17")?, 100);
    assert_eq!(count("c999")?, 100);
    let c999 = store.customer_by_external_id("c999")?;
    let contacts = store.history(c999.id)?.contacts;
    assert_eq!(contacts[0].1.at, start + chrono::Duration::minutes(999));
    assert_eq!(
        contacts[99].1.at,
        start + chrono::Duration::minutes(99 * 1_000 + 999)
    );
    Ok(())
}

#[test]
fn signals_import_skips_identical_rows_only() -> TestResult {
    let (_folder, store) = temp_store()?;
    import_customers(&store, "external_id\nc1\nc2\n".as_bytes())?;
    // The third row repeats the second; the fourth is a second purchase at the same instant
    // with another amount, so it is a new event.
    let csv = "\
external_id,kind,channel,at,value
c2,purchase,email,2026-03-01T09:30:00Z,5
c1,purchase,email,2026-03-01T09:30:00Z,19.99
c1,purchase,email,2026-03-01T09:30:00Z,19.99
c1,purchase,email,2026-03-01T09:30:00Z,25
c1,opened,email,2026-03-01T08:00:00Z,
";

    let report = import_signals(&store, csv.as_bytes())?;

    assert_eq!(report.inserted, 4);
    assert_eq!(report.unchanged, 1);
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    let c1 = store.customer_by_external_id("c1")?;
    let signals = store.history(c1.id)?.signals;
    assert_eq!(signals.len(), 3);
    assert_eq!(signals[0].kind, SignalKind::Opened);
    assert_eq!(signals[0].at, utc(2026, 3, 1, 8, 0));
    assert_eq!(signals[1].kind, SignalKind::Purchase);
    assert_eq!(signals[1].value, Some(19.99));
    assert_eq!(signals[1].channel, Some(Channel::EMAIL));
    assert_eq!(signals[2].value, Some(25.0));
    Ok(())
}
