//! Attacks on the pages and the API: link tokens that were tampered with, truncated,
//! replayed for another customer or expired, API calls without the right token, and SQL
//! injection attempts in every text field.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::json;
use tact_delivery::token::{LinkKey, LinkPurpose};
use tact_domain::CustomerId;

use crate::harness::{Server, Workspace, wall_clock};

const OPEN_ALL_DAY: &str = "quiet_hours = { start = \"00:00\", end = \"00:00\" }\n";

fn started() -> (Workspace, Server) {
    let workspace = Workspace::new();
    workspace.append_config(OPEN_ALL_DAY);
    workspace.import_customers();
    let server = workspace.serve();
    (workspace, server)
}

/// Signs a token for `customer` issued `days_ago` days before now.
fn token_issued(
    workspace: &Workspace,
    purpose: LinkPurpose,
    customer: i64,
    days_ago: i64,
) -> String {
    let secret = workspace.config_value("secret_key");
    let key = LinkKey::new(secret.as_bytes()).unwrap();
    key.sign(
        purpose,
        CustomerId(customer),
        wall_clock() - chrono::Duration::days(days_ago),
    )
}

/// Invalid variants of a genuine token for customer `c1`, with a label for each.
fn forged_tokens(workspace: &Workspace, purpose: LinkPurpose) -> Vec<(&'static str, String)> {
    let store = workspace.store();
    let ann = store.customer_by_external_id("c1").unwrap().id.0;
    let bob = store.customer_by_external_id("c2").unwrap().id.0;
    let genuine = token_issued(workspace, purpose, ann, 0);
    let bytes = URL_SAFE_NO_PAD.decode(&genuine).unwrap();

    let mut flipped_mac = bytes.clone();
    flipped_mac[33] ^= 0x01;
    let mut other_customer = bytes.clone();
    other_customer[2..10].copy_from_slice(&bob.to_be_bytes());
    let mut later_issue = bytes.clone();
    later_issue[17] ^= 0x01;
    let other_purpose = match purpose {
        LinkPurpose::Unsubscribe => LinkPurpose::Preferences,
        LinkPurpose::Preferences => LinkPurpose::Unsubscribe,
    };
    vec![
        ("flipped MAC bit", URL_SAFE_NO_PAD.encode(&flipped_mac)),
        ("replayed for c2", URL_SAFE_NO_PAD.encode(&other_customer)),
        ("changed issue time", URL_SAFE_NO_PAD.encode(&later_issue)),
        ("truncated", genuine[..genuine.len() - 4].to_owned()),
        ("extended", format!("{genuine}AAAA")),
        ("expired", token_issued(workspace, purpose, ann, 400)),
        (
            "issued in the future",
            token_issued(workspace, purpose, ann, -2),
        ),
        (
            "other purpose",
            token_issued(workspace, other_purpose, ann, 0),
        ),
        ("not base64", "%00%27%22;--".to_owned()),
        ("empty MAC", URL_SAFE_NO_PAD.encode(&bytes[..18])),
    ]
}

/// Sends each forged token to `page` with GET and POST and returns the distinct bodies.
async fn forged_responses(
    workspace: &Workspace,
    server: &Server,
    page: &str,
    purpose: LinkPurpose,
) -> Vec<String> {
    let client = server.client();
    let mut bodies = Vec::new();
    for (label, token) in forged_tokens(workspace, purpose) {
        let url = format!("{}/{page}/{token}", server.url);
        let get = client.get(&url).send().await.unwrap();
        assert_eq!(get.status(), StatusCode::NOT_FOUND, "GET {page} {label}");
        bodies.push(get.text().await.unwrap());
        let post = client
            .post(&url)
            .form(&[("List-Unsubscribe", "One-Click"), ("marketing", "off")])
            .send()
            .await
            .unwrap();
        assert_eq!(post.status(), StatusCode::NOT_FOUND, "POST {page} {label}");
        bodies.push(post.text().await.unwrap());
    }
    bodies.sort();
    bodies.dedup();
    bodies
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_link_tokens_reveal_nothing() {
    let (workspace, server) = started();

    let unsubscribe =
        forged_responses(&workspace, &server, "unsubscribe", LinkPurpose::Unsubscribe).await;
    let preferences =
        forged_responses(&workspace, &server, "preferences", LinkPurpose::Preferences).await;

    assert_eq!(unsubscribe.len(), 1, "{unsubscribe:?}");
    assert_eq!(preferences, unsubscribe);
    let body = &unsubscribe[0];
    assert!(body.contains("This link is not valid"), "{body}");
    for secret in ["Ann", "Bob", "@example.com"] {
        assert!(!body.contains(secret), "{secret} in {body}");
    }
    let store = workspace.store();
    for external_id in ["c1", "c2"] {
        let customer = store.customer_by_external_id(external_id).unwrap().id;
        assert_eq!(
            store.consent_log(customer).unwrap().len(),
            0,
            "{external_id}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn api_without_valid_token_is_401() {
    let (_workspace, server) = started();
    let client = server.client();
    let url = format!("{}/api/v1/customers/c1", server.url);
    let token = server.token.clone();
    let mut wrong_last = token.clone().into_bytes();
    let last = wrong_last.len() - 1;
    wrong_last[last] = if wrong_last[last] == b'a' { b'b' } else { b'a' };
    let wrong_last = String::from_utf8(wrong_last).unwrap();
    let headers = [
        None,
        Some(String::new()),
        Some("Bearer".to_owned()),
        Some("Bearer ".to_owned()),
        Some(format!("Basic {token}")),
        Some(format!("bearer {token}")),
        Some(format!("Bearer {wrong_last}")),
        Some(format!("Bearer {}", &token[..token.len() - 1])),
        Some(format!("Bearer {token}x")),
        Some(format!("Bearer  {token}")),
    ];

    for header in headers {
        let mut request = client.get(&url);
        if let Some(value) = &header {
            request = request.header("Authorization", value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{header:?}");
        let body = response.text().await.unwrap();
        assert!(!body.contains("Ann"), "{body}");
    }
    let genuine = client.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(genuine.status(), StatusCode::OK);
}

/// Inputs that would change a statement built by string concatenation.
const INJECTIONS: [&str; 6] = [
    "Robert'); DROP TABLE customers;--",
    "x' OR '1'='1",
    "\"; DELETE FROM contacts; --",
    "1; UPDATE customers SET name = 'owned'",
    "%' UNION SELECT api_token FROM config --",
    "\\'; PRAGMA writable_schema = 1; --",
];

#[tokio::test(flavor = "multi_thread")]
async fn sql_injection_is_stored_verbatim() {
    let (workspace, server) = started();
    let client = server.client();

    for (index, text) in INJECTIONS.iter().enumerate() {
        let external_id = format!("inj{index}{text}");
        let url = format!(
            "{}/api/v1/customers/{}",
            server.url,
            urlencode(&external_id)
        );
        let body = json!({"name": text, "email": format!("inj{index}@example.com"), "timezone": "UTC", "fields": {"note": text, (*text): text}});
        let put = client
            .put(&url)
            .bearer_auth(&server.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), StatusCode::CREATED, "{text}");
        let signal = json!({"customer": external_id, "kind": "declined", "topic": text, "at": "2026-03-01T10:05:00Z"});
        let recorded = client
            .post(format!("{}/api/v1/signals", server.url))
            .bearer_auth(&server.token)
            .json(&signal)
            .send()
            .await
            .unwrap();
        let status = recorded.status();
        let answer = recorded.text().await.unwrap();
        assert!(
            status == StatusCode::CREATED || status == StatusCode::UNPROCESSABLE_ENTITY,
            "{status} {answer}"
        );

        let got = client
            .get(&url)
            .bearer_auth(&server.token)
            .send()
            .await
            .unwrap();
        assert_eq!(got.status(), StatusCode::OK, "{text}");
        let customer: serde_json::Value = got.json().await.unwrap();
        assert_eq!(customer["name"], *text);
        assert_eq!(customer["fields"]["note"], *text);
        assert_eq!(customer["fields"][*text], *text);
    }

    let store = workspace.store();
    for (index, text) in INJECTIONS.iter().enumerate() {
        let customer = store
            .customer_by_external_id(&format!("inj{index}{text}"))
            .unwrap();
        assert_eq!(customer.name.as_deref(), Some(*text));
    }
    let ann = store.customer_by_external_id("c1").unwrap();
    assert_eq!(ann.name.as_deref(), Some("Ann Lee"));
    let connection = rusqlite::Connection::open(workspace.path().join("tact.db")).unwrap();
    let customers: i64 = connection
        .query_row("SELECT COUNT(*) FROM customers", [], |row| row.get(0))
        .unwrap();
    assert_eq!(customers, 2 + INJECTIONS.len() as i64);
    let check: String = connection
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

/// Percent-encodes every byte outside the unreserved set of RFC 3986.
fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn token_for_unknown_customer_changes_nothing() {
    let (workspace, server) = started();
    let client = server.client();

    for (page, purpose) in [
        ("unsubscribe", LinkPurpose::Unsubscribe),
        ("preferences", LinkPurpose::Preferences),
    ] {
        let token = token_issued(&workspace, purpose, 999_999, 0);
        let url = format!("{}/{page}/{token}", server.url);
        let get = client.get(&url).send().await.unwrap();
        let post = client
            .post(&url)
            .form(&[("List-Unsubscribe", "One-Click"), ("marketing", "off")])
            .send()
            .await
            .unwrap();

        assert_eq!(post.status(), StatusCode::NOT_FOUND, "POST {page}");
        // NOTE: GET /unsubscribe returns 200 with the confirmation form, which shows no
        // customer data, because that page does not look the customer up.
        if page == "preferences" {
            assert_eq!(get.status(), StatusCode::NOT_FOUND, "GET {page}");
        } else {
            let body = get.text().await.unwrap();
            assert!(!body.contains("@example.com"), "{body}");
        }
    }
}
