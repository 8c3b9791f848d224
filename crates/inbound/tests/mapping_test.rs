//! The fields that map a report back to its delivery: the VERP address, the original
//! Message-ID and the original recipient.

use tact_inbound::{Class, classify, to_json_line};

#[test]
fn qmail_notice_maps_inline_copy() {
    let raw = b"From: MAILER-DAEMON@mx.example.net\r\n\
To: bounces+42-k7f3@mail.example.com\r\n\
Subject: failure notice\r\n\
\r\n\
Hi. This is the qmail-send program at mx.example.net.\r\n\
I'm afraid I wasn't able to deliver your message to the following addresses.\r\n\
This is a permanent error; I've given up. Sorry it didn't work out.\r\n\
\r\n\
<Kim.Lee@example.net>:\r\n\
Sorry, no mailbox here by that name. (#5.1.1)\r\n\
\r\n\
--- Below this line is a copy of the message.\r\n\
\r\n\
Return-Path: <bounces+42-k7f3@mail.example.com>\r\n\
Message-ID: <delivery-42@mail.example.com>\r\n\
From: Shop <news@example.com>\r\n\
To: Kim Lee <kim.lee@example.net>\r\n\
Subject: Spring tips\r\n\
\r\n\
Hello Kim\r\n";

    let reports = classify(raw);

    assert_eq!(reports.len(), 1);
    let report = &reports[0];
    assert_eq!(report.class, Class::HardBounce);
    assert_eq!(report.recipient.as_deref(), Some("kim.lee@example.net"));
    assert_eq!(report.status.as_deref(), Some("5.1.1"));
    assert_eq!(
        report.verp.as_deref(),
        Some("bounces+42-k7f3@mail.example.com")
    );
    assert_eq!(
        report.original_message_id.as_deref(),
        Some("delivery-42@mail.example.com")
    );
    assert_eq!(report.original_recipient, None);
    assert_eq!(
        report.reason,
        "Sorry, no mailbox here by that name. (#5.1.1)"
    );
}

#[test]
fn dsn_maps_enclosed_headers() {
    let raw = b"From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r\n\
To: shop@example.com\r\n\
Subject: Undelivered Mail Returned to Sender\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"r\"\r\n\
\r\n\
--r\r\n\
Content-Type: text/plain\r\n\
\r\n\
I'm sorry to have to inform you that your message could not be delivered.\r\n\
--r\r\n\
Content-Type: message/delivery-status\r\n\
\r\n\
Reporting-MTA: dns; mx.example.org\r\n\
\r\n\
Final-Recipient: rfc822; kim@mailbox.example.org\r\n\
Original-Recipient: rfc822; kim@example.org\r\n\
Action: failed\r\n\
Status: 5.0.0\r\n\
Diagnostic-Code: smtp; 550 5.1.1 <kim@mailbox.example.org>: Recipient address\r\n\
\x20rejected: User unknown in local recipient table\r\n\
--r\r\n\
Content-Type: text/rfc822-headers\r\n\
\r\n\
Return-Path: <bounces+7-zz9@mail.example.com>\r\n\
Message-ID: <delivery-7@mail.example.com>\r\n\
To: kim@example.org\r\n\
Subject: Receipt\r\n\
--r--\r\n";

    let reports = classify(raw);

    assert_eq!(reports.len(), 1);
    let report = &reports[0];
    assert_eq!(report.class, Class::HardBounce);
    assert_eq!(report.recipient.as_deref(), Some("kim@mailbox.example.org"));
    assert_eq!(
        report.original_recipient.as_deref(),
        Some("kim@example.org")
    );
    assert_eq!(report.status.as_deref(), Some("5.1.1"));
    assert_eq!(
        report.verp.as_deref(),
        Some("bounces+7-zz9@mail.example.com")
    );
    assert_eq!(
        report.original_message_id.as_deref(),
        Some("delivery-7@mail.example.com")
    );
    assert_eq!(
        to_json_line(report, Some(7)),
        "{\"class\":\"hard_bounce\",\"recipient\":\"kim@mailbox.example.org\",\
         \"status\":\"5.1.1\",\"reason\":\"550 5.1.1 <kim@mailbox.example.org>: Recipient \
         address rejected: User unknown in local recipient table\",\"delivery\":7}"
    );
}

#[test]
fn delayed_dsn_is_soft() {
    let raw = b"From: MAILER-DAEMON@mx.example.org\r\n\
Subject: Delayed Mail (still being retried)\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=d\r\n\
\r\n\
--d\r\n\
Content-Type: message/delivery-status\r\n\
\r\n\
Final-Recipient: rfc822; kim@example.org\r\n\
Action: delayed\r\n\
Status: 4.4.1\r\n\
Diagnostic-Code: X-Postfix; connect to mx.example.org: Connection timed out\r\n\
--d--\r\n";

    let reports = classify(raw);

    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].class, Class::SoftBounce);
    assert_eq!(reports[0].status.as_deref(), Some("4.4.1"));
    assert_eq!(
        reports[0].reason,
        "connect to mx.example.org: Connection timed out"
    );
}
