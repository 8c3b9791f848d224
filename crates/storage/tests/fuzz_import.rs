//! Property tests of the CSV importers: any bytes are either imported or rejected with a
//! line number inside the file, never a panic, and a rejected row stores nothing.

use proptest::prelude::*;
use tact_storage::Store;
use tact_storage::import::{import_contacts, import_customers, import_signals};

/// Cells that are valid, hostile or malformed, so rows mix accepted and rejected ones.
fn cell() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-z]{1,8}",
        "[a-z]{1,6}@example\\.com",
        Just("Europe/Berlin".to_owned()),
        Just("Mars/Base".to_owned()),
        Just("2026-03-01T10:00:00Z".to_owned()),
        Just("-5".to_owned()),
        Just("\"quoted, with comma\"".to_owned()),
        Just("\"line\nbreak\"".to_owned()),
        Just("\"unclosed".to_owned()),
        Just("nul\0byte".to_owned()),
        Just("x' OR '1'='1".to_owned()),
        "\\PC{0,12}",
    ]
}

fn csv_text(header: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let row = prop::collection::vec(cell(), 0..9).prop_map(|cells| cells.join(","));
    let ending = prop_oneof![Just("\n"), Just("\r\n"), Just("\r")];
    (
        prop::collection::vec(row, 0..20),
        ending,
        any::<bool>(),
        any::<Vec<u8>>(),
    )
        .prop_map(move |(rows, ending, garbage, bytes)| {
            let mut text = header.replace('\n', ending).into_bytes();
            for row in rows {
                text.extend_from_slice(row.as_bytes());
                text.extend_from_slice(ending.as_bytes());
            }
            if garbage {
                text.extend_from_slice(&bytes);
            }
            text
        })
}

/// Counts the physical lines of `bytes` (header = 1), taking LF, CRLF and a bare CR each as
/// one line ending, as the importers number rows. A CR inside a quoted field counts too, so
/// this is an upper bound there.
fn line_count(bytes: &[u8]) -> u64 {
    let line_feeds = bytes.iter().filter(|byte| **byte == b'\n').count();
    let bare_carriage_returns = bytes
        .iter()
        .enumerate()
        .filter(|(index, byte)| **byte == b'\r' && bytes.get(index + 1) != Some(&b'\n'))
        .count();
    (line_feeds + bare_carriage_returns) as u64 + 1
}

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("tact.db")).unwrap();
    (dir, store)
}

fn integrity(dir: &tempfile::TempDir) -> String {
    let connection = rusqlite::Connection::open(dir.path().join("tact.db")).unwrap();
    connection
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn customer_import_never_panics(bytes in csv_text("external_id,name,email,phone,timezone,locale,account,plan\n")) {
        let (dir, store) = store();
        let lines = line_count(&bytes);
        if let Ok(report) = import_customers(&store, bytes.as_slice()) {
            for rejection in &report.rejected {
                prop_assert!((1..=lines).contains(&rejection.line), "{rejection:?} of {lines}");
                prop_assert!(!rejection.reason.is_empty());
            }
            let stored = report.inserted + report.updated + report.unchanged;
            let connection = rusqlite::Connection::open(dir.path().join("tact.db")).unwrap();
            let count: u64 = connection.query_row("SELECT COUNT(*) FROM customers", [], |row| row.get(0)).unwrap();
            prop_assert_eq!(count, report.inserted);
            prop_assert!(stored >= report.inserted);
        }
        prop_assert_eq!(integrity(&dir), "ok");
    }

    #[test]
    fn contact_import_never_panics(bytes in csv_text("external_id,channel,purpose,topic,at,duration_s,outcome\n")) {
        let (dir, store) = store();
        import_customers(&store, "external_id\nabc\nx\n".as_bytes()).unwrap();
        let lines = line_count(&bytes);
        if let Ok(report) = import_contacts(&store, bytes.as_slice()) {
            for rejection in &report.rejected {
                prop_assert!((1..=lines).contains(&rejection.line), "{rejection:?} of {lines}");
            }
        }
        prop_assert_eq!(integrity(&dir), "ok");
    }

    #[test]
    fn signal_import_never_panics(bytes in csv_text("external_id,kind,channel,at,topic,value,machine\n")) {
        let (dir, store) = store();
        import_customers(&store, "external_id\nabc\nx\n".as_bytes()).unwrap();
        let lines = line_count(&bytes);
        if let Ok(report) = import_signals(&store, bytes.as_slice()) {
            for rejection in &report.rejected {
                prop_assert!((1..=lines).contains(&rejection.line), "{rejection:?} of {lines}");
            }
        }
        prop_assert_eq!(integrity(&dir), "ok");
    }
}
