//! Malformed, truncated, very large and non-UTF-8 input must give a result, never a panic.

use std::path::{Path, PathBuf};

use tact_inbound::{Class, classify};

fn all_corpus_messages() -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "eml") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

#[test]
fn truncated_corpus_messages_classify() {
    let messages = all_corpus_messages();
    assert_eq!(messages.len(), 781);
    for path in messages {
        let raw = std::fs::read(&path).unwrap_or_default();
        for cut in [
            0,
            1,
            17,
            200,
            1000,
            raw.len() / 3,
            raw.len() / 2,
            raw.len() - raw.len() / 10,
        ] {
            let reports = classify(&raw[..cut.min(raw.len())]);
            assert!(!reports.is_empty(), "{} cut at {cut}", path.display());
            for report in &reports {
                assert!(report.reason.chars().count() <= 200, "{}", path.display());
                assert!(!report.reason.contains('\n'), "{}", path.display());
            }
        }
    }
}

#[test]
fn empty_input_is_not_returned() {
    let reports = classify(b"");
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].class, Class::NotReturned);
    assert_eq!(reports[0].recipient, None);
}

#[test]
fn binary_garbage_is_not_returned() {
    let garbage: Vec<u8> = (0..100_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let reports = classify(&garbage);
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].class, Class::NotReturned);
}

#[test]
fn non_utf8_bounce_is_read() {
    let mut raw = b"From: MAILER-DAEMON@mx.example.org\r\n\
Subject: Undelivered Mail Returned to Sender\r\n\
Content-Type: text/plain; charset=iso-8859-1\r\n\
\r\n\
This is the mail system. Your message could not be delivered: \xe9\xff\xfe\r\n\
\r\n\
<kim@example.org>: host mx.example.org said: 550 5.1.1 User unknown \xc3\x28\r\n"
        .to_vec();
    raw.extend_from_slice(b"\xff\xfe\xfd\r\n");
    let reports = classify(&raw);
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].class, Class::HardBounce);
    assert_eq!(reports[0].recipient.as_deref(), Some("kim@example.org"));
    assert_eq!(reports[0].status.as_deref(), Some("5.1.1"));
}

#[test]
fn twenty_megabyte_message_classifies() {
    let mut raw = b"From: MAILER-DAEMON@mx.example.org\r\n\
To: bounces+9-sig@mail.example.com\r\n\
Subject: Mail delivery failed\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\
\r\n\
--b\r\n\
Content-Type: text/plain\r\n\
\r\n\
Delivery failed.\r\n\
--b\r\n\
Content-Type: message/delivery-status\r\n\
\r\n\
Final-Recipient: rfc822; kim@example.org\r\n\
Action: failed\r\n\
Status: 5.2.2\r\n\
Diagnostic-Code: smtp; 552 5.2.2 Mailbox full\r\n\
\r\n\
--b\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
To: kim@example.org\r\n\
Message-ID: <m1@mail.example.com>\r\n\
\r\n"
        .to_vec();
    let line = b"0123456789 the quick brown fox jumps over the lazy dog @ example\r\n";
    while raw.len() < 20 * 1024 * 1024 {
        raw.extend_from_slice(line);
    }
    raw.extend_from_slice(b"--b--\r\n");

    let reports = classify(&raw);

    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].class, Class::SoftBounce);
    assert_eq!(reports[0].recipient.as_deref(), Some("kim@example.org"));
    assert_eq!(
        reports[0].verp.as_deref(),
        Some("bounces+9-sig@mail.example.com")
    );
    assert_eq!(
        reports[0].original_message_id.as_deref(),
        Some("m1@mail.example.com")
    );
}

#[test]
fn deeply_nested_parts_classify() {
    let mut raw = String::from("From: a@example.org\r\nSubject: nested\r\n");
    for depth in 0..200 {
        raw.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=b{depth}\r\n\r\n--b{depth}\r\n"
        ));
    }
    raw.push_str("Content-Type: text/plain\r\n\r\nhello\r\n");
    let reports = classify(raw.as_bytes());
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].class, Class::NotReturned);
}

#[test]
fn header_only_garbage_classifies() {
    let inputs: [&[u8]; 5] = [
        b"\r\n\r\n\r\n",
        b"Content-Type: multipart/report; report-type=delivery-status\r\n\r\n",
        b"Content-Type: message/delivery-status\r\n\r\nFinal-Recipient: ;;;\r\nStatus: 5.\r\n",
        b"Subject: =?utf-8?B?////?=\r\nFrom: <>\r\n\r\nundeliverable",
        b"Content-Type: multipart/report; report-type=feedback-report; boundary=\"\"\r\n\r\n--\r\n",
    ];
    for input in inputs {
        let reports = classify(input);
        assert!(!reports.is_empty(), "{input:?}");
    }
}

#[test]
fn repetitive_input_stays_linear() {
    let mut raw = String::from(
        "From: MAILER-DAEMON@mx.example.org\r\nSubject: Undelivered Mail Returned to Sender\r\n",
    );
    raw.push_str("X-Note: ");
    raw.push_str(&"bounces+".repeat(50_000));
    raw.push_str("\r\n\r\nThe message could not be delivered to these recipients:\r\n");
    for index in 0..20_000 {
        raw.push_str(&format!(
            "<user{index}@example.org>: 550 5.1.1 User unknown @@@ a@b@c\r\n"
        ));
    }

    let started = std::time::Instant::now();
    let reports = classify(raw.as_bytes());
    let elapsed = started.elapsed();

    assert_eq!(reports.len(), 50);
    assert_eq!(reports[0].recipient.as_deref(), Some("user0@example.org"));
    assert_eq!(reports[0].class, Class::HardBounce);
    // Generous bound for a debug build on a loaded machine; quadratic scans take minutes.
    assert!(elapsed.as_secs() < 20, "took {elapsed:?}");
}

#[test]
fn dsn_with_many_recipients_classifies() {
    let mut raw = String::from(
        "From: MAILER-DAEMON@mx.example.org\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n\
         --b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n",
    );
    for index in 0..5_000 {
        raw.push_str(&format!(
            "Final-Recipient: rfc822; user{index}@example.org\r\nAction: failed\r\n\
             Status: 5.2.2\r\n\r\n"
        ));
    }
    raw.push_str("--b--\r\n");

    let reports = classify(raw.as_bytes());

    assert_eq!(reports.len(), 5_000);
    assert_eq!(
        reports[4_999].recipient.as_deref(),
        Some("user4999@example.org")
    );
    assert!(
        reports
            .iter()
            .all(|report| report.class == Class::SoftBounce)
    );
}
