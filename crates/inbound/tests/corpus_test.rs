//! Classification of the public test corpus in `tests/corpus/`: ordinary mail must not be
//! taken for returned mail, feedback reports must be complaints, and a hand-checked sample of
//! bounces must give the right class, recipient and status code.

use std::path::{Path, PathBuf};

use tact_inbound::{Class, Report, classify};

fn corpus(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(relative)
}

fn messages_in(relative: &str) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(corpus(relative))
        .unwrap_or_else(|error| panic!("corpus folder {relative} is missing: {error}"))
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
        .collect();
    paths.sort();
    paths
}

fn classify_file(path: &Path) -> Vec<Report> {
    let raw = std::fs::read(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    classify(&raw)
}

/// Messages that are delivery status notifications although they sit in ordinary folders.
const KNOWN_BOUNCES: &[&str] = &[
    // A DSN whose parts lack a content type, kept by mail-gem among its MIME fixtures.
    "raw_email_with_mimepart_without_content_type.eml",
    // Filed by sisimai as a regression case, but it is a real "Mailbox full" bounce.
    "rb-issue-368-bug.eml",
];

#[test]
fn ordinary_messages_are_not_returned() {
    let folders = [
        "mail-gem/attachment_emails",
        "mail-gem/error_emails",
        "mail-gem/mime_emails",
        "mail-gem/multi_charset",
        "mail-gem/plain_emails",
        "mail-gem/rfc2822",
        "mail-gem/rfc6532",
        "flanker",
        "flanker/spam",
        "sisimai/not",
    ];
    let mut checked = 0;
    for folder in folders {
        for path in messages_in(folder) {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if KNOWN_BOUNCES.contains(&name.as_ref()) {
                continue;
            }
            let reports = classify_file(&path);
            assert_eq!(reports.len(), 1, "{}: {reports:?}", path.display());
            assert_eq!(
                reports[0].class,
                Class::NotReturned,
                "{}: {reports:?}",
                path.display()
            );
            assert_eq!(reports[0].recipient, None, "{}", path.display());
            checked += 1;
        }
    }
    assert_eq!(checked, 134);
}

#[test]
fn feedback_reports_are_complaints() {
    let mut paths = messages_in("flanker/complaints");
    paths.extend(messages_in("sisimai/bsd").into_iter().filter(|path| {
        path.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("arf-"))
    }));
    // DMARC forensic reports (Feedback-Type: auth-failure) are about the sender's
    // authentication, not a recipient's complaint.
    let auth_failures = ["arf-18.eml", "arf-19.eml", "arf-20.eml"];
    assert_eq!(paths.len(), 19);
    for path in paths {
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let reports = classify_file(&path);
        assert_eq!(reports.len(), 1, "{name}: {reports:?}");
        let expected = if auth_failures.contains(&name.as_str()) {
            Class::NotReturned
        } else {
            Class::Complaint
        };
        assert_eq!(reports[0].class, expected, "{name}: {reports:?}");
    }
}

#[test]
fn complaint_recipients_match_reports() {
    let cases = [
        ("flanker/complaints/aol.eml", "redacted@aol.com"),
        ("flanker/complaints/yahoo.eml", "user@yahoo.com"),
        ("sisimai/bsd/arf-01.eml", "redacted@example.net"),
        ("sisimai/bsd/arf-22.eml", "kijitora@example.com"),
        ("sisimai/bsd/arf-26.eml", "example@icloud.com"),
    ];
    for (file, recipient) in cases {
        let reports = classify_file(&corpus(file));
        assert_eq!(reports[0].class, Class::Complaint, "{file}");
        assert_eq!(reports[0].recipient.as_deref(), Some(recipient), "{file}");
    }
}

#[test]
fn auto_replies_are_recognised() {
    let cases = [
        ("sisimai/bsd/rfc3834-01.eml", "kijitora@example.net"),
        ("sisimai/bsd/rfc3834-02.eml", "nekonyaan@example.org"),
        ("sisimai/bsd/rfc3834-03.eml", "kijitora@apple.example.com"),
        ("sisimai/bsd/rfc3834-04.eml", "kijitora@example.org"),
    ];
    for (file, sender) in cases {
        let reports = classify_file(&corpus(file));
        assert_eq!(reports.len(), 1, "{file}");
        assert_eq!(reports[0].class, Class::AutoReply, "{file}");
        assert_eq!(reports[0].recipient.as_deref(), Some(sender), "{file}");
    }
}

#[test]
fn read_receipt_is_not_returned() {
    let reports = classify_file(&corpus("flanker/disposition-notification.eml"));
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].class, Class::NotReturned);
}

const HARD: Class = Class::HardBounce;
const SOFT: Class = Class::SoftBounce;

/// Expected first report of each message, read by hand from the message: class, recipient
/// and enhanced status code.
#[rustfmt::skip]
const BOUNCES: &[(&str, Class, &str, Option<&str>)] = &[
    ("flanker/bounce/delayed-broken.eml", SOFT, "demo@example.com", Some("4.2.2")),
    ("flanker/bounce/delayed.eml", SOFT, "foo@example.com", Some("4.0.0")),
    ("flanker/bounce/mailbox-full.eml", SOFT, "user@aol.com", Some("5.2.2")),
    ("flanker/bounce/no-mx.eml", SOFT, "user@example.com", Some("4.4.4")),
    ("flanker/bounce/office365.eml", HARD, "noname@example.com", Some("5.1.10")),
    ("flanker/bounce/zed.eml", HARD, "asdfasdfasdfasdfasdfasdfewrqertrtyrthsfgdfgadfqeadvxzvz@gmail.com", Some("5.1.1")),
    ("flanker/bounce/gmail-invalid-address.eml", HARD, "awfawfawfawfawfaw@someserverhere.com", Some("5.1.0")),
    ("flanker/bounce/gmail-no-dns.eml", HARD, "user@example.comm", None),
    ("flanker/bounce/broken-mime.eml", SOFT, "info@example.net", None),
    ("mail-gem/multipart_report_emails/multi_address_bounce1.eml", HARD, "bbbbvhvbbvkjbhfbvbvjhb@gmail.com", Some("5.1.1")),
    ("mail-gem/multipart_report_emails/report_422.eml", SOFT, "fraser@oooooooo.com.au", Some("4.2.2")),
    ("mail-gem/multipart_report_emails/report_530.eml", HARD, "edwin@zzzzzzz.com", Some("5.3.0")),
    ("sisimai/bsd/rfc3464-01.eml", HARD, "userunknown@bouncehammer.jp", Some("5.1.1")),
    ("sisimai/bsd/rfc3464-03.eml", SOFT, "kijitora@example.com", Some("5.0.0")),
    ("sisimai/bsd/rfc3464-04.eml", SOFT, "kijitora@mailx-53.neko.example.edu", Some("5.5.0")),
    ("sisimai/bsd/rfc3464-10.eml", HARD, "kijitora@example.jp", Some("5.1.6")),
    ("sisimai/bsd/lhost-postfix-01.eml", HARD, "r@p351355.pool.example.ne.jp", Some("5.1.1")),
    ("sisimai/bsd/lhost-postfix-03.eml", HARD, "kijitora@example.net", Some("5.0.0")),
    ("sisimai/bsd/lhost-postfix-04.eml", HARD, "kijitora@example.co.jp", Some("5.1.1")),
    ("sisimai/bsd/lhost-postfix-10.eml", SOFT, "kijitora@example.jp", Some("5.1.8")),
    ("sisimai/bsd/lhost-sendmail-01.eml", HARD, "userunknown@bouncehammer.jp", Some("5.1.1")),
    ("sisimai/bsd/lhost-sendmail-10.eml", SOFT, "kijitora@example.or.jp", Some("4.4.7")),
    ("sisimai/bsd/lhost-courier-01.eml", HARD, "kijitora@example.co.jp", Some("5.1.1")),
    ("sisimai/bsd/rhost-google-01.eml", HARD, "shironeko@example.ne.jp", Some("5.2.1")),
    ("sisimai/bsd/rhost-outlook-01.eml", SOFT, "kijitora@example.jp", Some("5.2.2")),
    ("sisimai/bsd/rhost-yahooinc-01.eml", SOFT, "kijitora@aol.example.jp", Some("5.7.9")),
    ("sisimai/bsd/lhost-qmail-01.eml", HARD, "kijitora@example.ne.jp", Some("5.5.0")),
    ("sisimai/bsd/lhost-exim-01.eml", SOFT, "kijitora@example.ed.jp", Some("5.7.0")),
    ("sisimai/bsd/lhost-exim-05.eml", HARD, "kijitora@neko.example.co.jp", Some("5.1.1")),
    ("sisimai/bsd/lhost-yahoo-01.eml", HARD, "kijitora@example.org", Some("5.1.1")),
    ("sisimai/bsd/lhost-gmail-01.eml", HARD, "userunknown@example.jp", Some("5.1.1")),
    ("sisimai/bsd/lhost-exchange2007-01.eml", HARD, "mikeneko@example.co.jp", Some("5.1.1")),
    ("sisimai/bsd/lhost-exchange2003-01.eml", HARD, "kijitora@example.jp", None),
    ("sisimai/bsd/lhost-office365-01.eml", HARD, "kijitora@example.com", Some("5.1.10")),
    ("sisimai/not/rb-issue-368-bug.eml", SOFT, "xxxx@yyyyyy.net", None),
    ("sisimai/bsd/lhost-exim-08.eml", SOFT, "kijitora@example.org", None),
    ("sisimai/bsd/lhost-verizon-02.eml", HARD, "may-be-straycat-nyaaaaaan@vtext.com", Some("5.0.0")),
    ("sisimai/bsd/lhost-imailserver-01.eml", HARD, "kijitora@example.com", None),
    ("sisimai/bsd/lhost-mfilter-01.eml", HARD, "kijitora@example.com", Some("5.0.0")),
    ("sisimai/bsd/lhost-opensmtpd-01.eml", HARD, "apdugoaidugoaidugoaeiudggadi@gmail.com", Some("5.1.1")),
    ("sisimai/bsd/lhost-dragonfly-05.eml", SOFT, "authfailure@libsisimai.net", Some("5.7.26")),
    ("sisimai/bsd/rfc3464-37.eml", HARD, "kijitora@neko.nyaan.example.com", None),
    ("sisimai/bsd/lhost-v5sendmail-01.eml", SOFT, "kijitora@example.com", Some("4.0.0")),
    ("sisimai/bsd/lhost-biglobe-01.eml", SOFT, "postmaster@mxr.biglobe.ne.jp", None),
    ("sisimai/bsd/lhost-messagingserver-03.eml", HARD, "sabineko@example.org", Some("5.7.1")),
];

#[test]
fn bounce_sample_matches_hand_checked_table() {
    let mut failures = Vec::new();
    for &(file, class, recipient, status) in BOUNCES {
        let reports = classify_file(&corpus(file));
        let first = &reports[0];
        let actual = (
            first.class,
            first.recipient.as_deref(),
            first.status.as_deref(),
        );
        if actual != (class, Some(recipient), status) {
            failures.push(format!(
                "{file}: expected {class} {recipient} {status:?}, got {actual:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} differ:\n{}",
        failures.len(),
        BOUNCES.len(),
        failures.join("\n")
    );
}

#[test]
fn multi_recipient_dsn_gives_each_recipient() {
    let reports = classify_file(&corpus("sisimai/bsd/lhost-sendmail-02.eml"));
    let summary: Vec<(Class, Option<&str>, Option<&str>)> = reports
        .iter()
        .map(|r| (r.class, r.recipient.as_deref(), r.status.as_deref()))
        .collect();
    assert_eq!(
        summary,
        [
            (HARD, Some("userunknown@example.org"), Some("5.1.1")),
            (HARD, Some("filtered@example.com"), Some("5.2.1")),
        ]
    );
}

#[test]
fn ses_notifications_are_read() {
    let bounce = classify_file(&corpus("sisimai/bsd/lhost-amazonses-09.eml"));
    assert_eq!(bounce[0].class, HARD);
    assert_eq!(
        bounce[0].recipient.as_deref(),
        Some("bounce@simulator.amazonses.com")
    );
    assert_eq!(bounce[0].status.as_deref(), Some("5.1.1"));

    let complaint = classify_file(&corpus("sisimai/bsd/lhost-amazonses-11.eml"));
    assert_eq!(complaint[0].class, Class::Complaint);
    assert_eq!(
        complaint[0].recipient.as_deref(),
        Some("complaint@simulator.amazonses.com")
    );

    let delivery = classify_file(&corpus("sisimai/bsd/lhost-amazonses-12.eml"));
    assert_eq!(delivery[0].class, Class::NotReturned);
}
