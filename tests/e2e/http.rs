//! The HTTP API, the unsubscribe endpoint, `/healthz` and `/metrics`, against a real
//! `tact serve` on 127.0.0.1.

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tact_delivery::token::LinkPurpose;
use tact_domain::Actor;
use tact_storage::DeliveryState;

use crate::harness::{Server, Workspace};

/// Contact hours that never close, so tests do not depend on the time of day they run.
const OPEN_ALL_DAY: &str = "quiet_hours = { start = \"00:00\", end = \"00:00\" }\n";

fn started() -> (Workspace, Server) {
    let workspace = Workspace::new();
    workspace.append_config(OPEN_ALL_DAY);
    workspace.import_customers();
    let server = workspace.serve();
    (workspace, server)
}

async fn post_json(server: &Server, path: &str, body: Value) -> (StatusCode, Value) {
    let response = server
        .client()
        .post(format!("{}{path}", server.url))
        .bearer_auth(&server.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn get_json(server: &Server, path: &str) -> (StatusCode, Value) {
    let response = server
        .client()
        .get(format!("{}{path}", server.url))
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn api_rejects_missing_token() {
    let (_workspace, server) = started();
    let client = server.client();
    let url = format!("{}/api/v1/decisions", server.url);

    let missing = client.post(&url).json(&json!({})).send().await.unwrap();
    let wrong = client
        .post(&url)
        .bearer_auth("wrong")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let read = client
        .get(format!("{}/api/v1/customers/c1", server.url))
        .send()
        .await
        .unwrap();

    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(read.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong.text().await.unwrap(),
        "{\"error\":\"missing or invalid bearer token\"}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn decision_matches_check_json() {
    let (workspace, server) = started();
    let cli = workspace.run_ok(&[
        "check",
        "--customer",
        "c1",
        "--channel",
        "email",
        "--purpose",
        "care",
        "--offer",
        "--at",
        "2026-03-02T10:00:00Z",
        "--json",
    ]);

    let response = server
        .client()
        .post(format!("{}/api/v1/decisions", server.url))
        .bearer_auth(&server.token)
        .json(&json!({
            "customer": "c1", "channel": "email", "purpose": "care", "offer": true,
            "at": "2026-03-02T10:00:00Z"
        }))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(format!("{}\n", response.text().await.unwrap()), cli);
}

#[tokio::test(flavor = "multi_thread")]
async fn decision_rejects_unknown_field() {
    let (_workspace, server) = started();

    let (status, body) = post_json(
        &server,
        "/api/v1/decisions",
        json!({"customer": "c1", "channel": "email", "purpose": "value", "colour": "red"}),
    )
    .await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("unknown field `colour`"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_requests_get_plain_errors() {
    let (_workspace, server) = started();

    let (status, body) = get_json(&server, "/api/v1/campaigns/abc").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"error": "invalid campaign id \"abc\": use the number that campaign create gave"})
    );

    let response = server
        .client()
        .post(format!("{}/api/v1/decisions", server.url))
        .bearer_auth(&server.token)
        .body(r#"{"customer": "c1", "channel": "email", "purpose": "care"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"error": "the request body must be JSON, sent with the header \
                         Content-Type: application/json"})
    );

    let response = server
        .client()
        .post(format!("{}/api/v1/decisions", server.url))
        .bearer_auth(&server.token)
        .header("content-type", "application/json")
        .body(r#"{"customer": "c1","#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = response.json::<Value>().await.unwrap();
    let error = body["error"].as_str().unwrap();
    assert!(
        error.starts_with("the request body is not valid JSON: "),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn decision_for_unknown_customer_is_404() {
    let (_workspace, server) = started();

    let (status, body) = post_json(
        &server,
        "/api/v1/decisions",
        json!({"customer": "nobody", "channel": "email", "purpose": "value"}),
    )
    .await;

    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"error": "customer with external id nobody not found"})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_recorded_decisions_book_once() {
    // The default policy allows one contact per day (min_gap 24h), so of eight concurrent
    // bookings exactly one may be approved.
    let (workspace, server) = started();
    let request = json!({
        "customer": "c2", "channel": "email", "purpose": "sales", "record": true,
        "at": "2026-03-02T10:00:00Z"
    });

    let mut tasks = Vec::new();
    for _ in 0..8 {
        let client = server.client();
        let url = format!("{}/api/v1/decisions", server.url);
        let token = server.token.clone();
        let body = request.clone();
        tasks.push(tokio::spawn(async move {
            let response = client
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            response.json::<Value>().await.unwrap()["decision"]
                .as_str()
                .unwrap()
                .to_owned()
        }));
    }
    let mut kinds = Vec::new();
    for task in tasks {
        kinds.push(task.await.unwrap());
    }

    assert_eq!(
        kinds.iter().filter(|kind| *kind == "approve").count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|kind| *kind == "defer").count(),
        7,
        "{kinds:?}"
    );
    let store = workspace.store();
    let customer = store.customer_by_external_id("c2").unwrap();
    assert_eq!(store.history(customer.id).unwrap().contacts.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn contact_and_signal_are_recorded() {
    let (workspace, server) = started();

    let (contact_status, contact) = post_json(
        &server,
        "/api/v1/contacts",
        json!({"customer": "c1", "channel": "phone", "purpose": "care", "at": "2026-03-01T10:00:00Z", "duration_s": 300}),
    )
    .await;
    let signal = json!({"customer": "c1", "kind": "declined", "topic": "offers", "at": "2026-03-01T10:05:00Z"});
    let (first_status, first) = post_json(&server, "/api/v1/signals", signal.clone()).await;
    let (second_status, second) = post_json(&server, "/api/v1/signals", signal).await;

    assert_eq!(contact_status, StatusCode::CREATED);
    assert!(contact["id"].as_i64().is_some());
    assert_eq!(
        (first_status, first),
        (StatusCode::CREATED, json!({"recorded": true}))
    );
    assert_eq!(
        (second_status, second),
        (StatusCode::OK, json!({"recorded": false}))
    );
    let store = workspace.store();
    let customer = store.customer_by_external_id("c1").unwrap();
    let history = store.history(customer.id).unwrap();
    assert_eq!(history.contacts.len(), 1);
    assert_eq!(history.contacts[0].1.duration_s, 300);
    assert_eq!(history.signals.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn customer_put_then_get() {
    let (_workspace, server) = started();
    let client = server.client();
    let url = format!("{}/api/v1/customers/c9", server.url);
    let body = json!({"name": "Cleo", "email": "cleo@example.com", "timezone": "America/New_York", "fields": {"plan": "gold"}});

    let created = client
        .put(&url)
        .bearer_auth(&server.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let updated = client
        .put(&url)
        .bearer_auth(&server.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, customer) = get_json(&server, "/api/v1/customers/c9").await;

    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(updated.status(), StatusCode::OK);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(customer["name"], "Cleo");
    assert_eq!(customer["timezone"], "America/New_York");
    assert_eq!(customer["fields"], json!({"plan": "gold"}));
}

#[tokio::test(flavor = "multi_thread")]
async fn preferences_patch_and_lock() {
    let (workspace, server) = started();
    let client = server.client();
    let url = format!("{}/api/v1/customers/c1/preferences", server.url);
    let opt_out =
        json!({"actor": "customer", "changes": [{"change": "marketing", "allowed": false}]});
    // The bucket change comes first and must not be saved when the lift is refused.
    let lift = json!({"actor": "staff", "changes": [
        {"change": "bucket", "bucket": "quarterly"},
        {"change": "marketing", "allowed": true}]});

    let first = client
        .patch(&url)
        .bearer_auth(&server.token)
        .json(&opt_out)
        .send()
        .await
        .unwrap();
    let second = client
        .patch(&url)
        .bearer_auth(&server.token)
        .json(&lift)
        .send()
        .await
        .unwrap();
    let (_, preferences) = get_json(&server, "/api/v1/customers/c1/preferences").await;

    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(second.status(), StatusCode::CONFLICT);
    assert_eq!(preferences["marketing_opt_out"]["actor"], "customer");
    assert_eq!(preferences["marketing_opt_out"]["source"], "api");
    assert_eq!(preferences["bucket"], Value::Null);
    let store = workspace.store();
    let customer = store.customer_by_external_id("c1").unwrap();
    assert_eq!(store.consent_log(customer.id).unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_patches_save_whole_requests() {
    const REQUESTS: usize = 20;
    let (workspace, server) = started();
    let client = server.client();
    let url = format!("{}/api/v1/customers/c1/preferences", server.url);
    let opt_out =
        json!({"actor": "customer", "changes": [{"change": "marketing", "allowed": false}]});
    let first = client
        .patch(&url)
        .bearer_auth(&server.token)
        .json(&opt_out)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);

    // Even requests are valid, and odd ones end with a lift of the customer's opt-out.
    let mut requests = tokio::task::JoinSet::new();
    for index in 0..REQUESTS {
        let (client, url, token) = (client.clone(), url.clone(), server.token.clone());
        let bucket = if index % 2 == 0 {
            "monthly"
        } else {
            "quarterly"
        };
        let mut changes = vec![
            json!({"change": "bucket", "bucket": bucket}),
            json!({"change": "channel", "channel": "sms", "allowed": index % 4 == 0}),
        ];
        if index % 2 == 1 {
            changes.push(json!({"change": "marketing", "allowed": true}));
        }
        let body = json!({"actor": "staff", "changes": changes});
        requests.spawn(async move {
            let response = client
                .patch(&url)
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await
                .unwrap();
            (index, response.status())
        });
    }
    let statuses = requests.join_all().await;
    let exit = server.stop();

    assert!(exit.success(), "tact serve exited with {exit}");
    for (index, status) in statuses {
        let expected = if index % 2 == 0 {
            StatusCode::OK
        } else {
            StatusCode::CONFLICT
        };
        assert_eq!(status, expected, "request {index}");
    }
    let store = workspace.store();
    let customer = store.customer_by_external_id("c1").unwrap();
    let log = store.consent_log(customer.id).unwrap();
    assert_eq!(log.len(), 1 + REQUESTS, "{log:?}");
    // Each saved request is two adjacent entries, its bucket change and then its channel change.
    for pair in log[1..].chunks(2) {
        let bucket = serde_json::to_value(&pair[0].change).unwrap();
        let channel = serde_json::to_value(&pair[1].change).unwrap();
        assert_eq!(bucket["change"], "bucket", "{log:?}");
        assert_eq!(bucket["bucket"], "monthly");
        assert_eq!(channel["change"], "channel", "{log:?}");
        assert_eq!(pair[0].mark, pair[1].mark);
        assert_eq!(pair[0].mark.actor, Actor::Staff);
    }
    let preferences = store.preferences(customer.id).unwrap();
    assert_eq!(
        preferences.marketing_opt_out.map(|mark| mark.actor),
        Some(Actor::Customer)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn openapi_lists_every_route() {
    let (_workspace, server) = started();
    let document: Value = server
        .client()
        .get(format!("{}/api/v1/openapi.json", server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let paths = document["paths"].as_object().unwrap();
    let mut listed: Vec<&str> = paths.keys().map(String::as_str).collect();
    listed.sort_unstable();
    assert_eq!(
        listed,
        [
            "/campaigns/{id}",
            "/contacts",
            "/customers/{external_id}",
            "/customers/{external_id}/preferences",
            "/decisions",
            "/inbound",
            "/openapi.json",
            "/signals",
        ]
    );
    for (path, operations) in paths {
        let concrete = path.replace("{external_id}", "c1").replace("{id}", "1");
        for method in operations
            .as_object()
            .unwrap()
            .keys()
            .filter(|key| *key != "parameters")
        {
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = server
                .client()
                .request(method.clone(), format!("{}/api/v1{concrete}", server.url))
                .bearer_auth(&server.token)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            assert_ne!(
                response.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            assert!(
                !response.text().await.unwrap().is_empty(),
                "{method} {path} is not routed"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_body_is_rejected() {
    let (_workspace, server) = started();
    let huge = "x".repeat(200 * 1024);

    let response = server
        .client()
        .post(format!("{}/api/v1/signals", server.url))
        .bearer_auth(&server.token)
        .header("content-type", "application/json")
        .body(format!("{{\"customer\":\"{huge}\",\"kind\":\"opened\"}}"))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "error": "the request body is too large; the limit is http.max_body_bytes, or \
                      bounces.max_message_bytes for /api/v1/inbound"
        })
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unsubscribe_get_never_unsubscribes() {
    let (workspace, server) = started();
    let token = workspace.token(LinkPurpose::Unsubscribe, "c1");

    let page = server
        .client()
        .get(format!("{}/unsubscribe/{token}", server.url))
        .send()
        .await
        .unwrap();

    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    assert_eq!(page.headers()["cache-control"], "no-store");
    let html = page.text().await.unwrap();
    assert!(html.contains("<form method=\"post\""), "{html}");
    assert!(
        html.contains("name=\"List-Unsubscribe\" value=\"One-Click\""),
        "{html}"
    );
    let store = workspace.store();
    let customer = store.customer_by_external_id("c1").unwrap();
    assert_eq!(
        store.preferences(customer.id).unwrap().marketing_opt_out,
        None
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn one_click_unsubscribe_is_idempotent() {
    let (workspace, server) = started();
    let token = workspace.token(LinkPurpose::Unsubscribe, "c1");
    let url = format!("{}/unsubscribe/{token}", server.url);
    let client = server.client();

    let first = client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    let second = client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();

    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(second.status(), StatusCode::OK);
    let store = workspace.store();
    let customer = store.customer_by_external_id("c1").unwrap();
    let mark = store
        .preferences(customer.id)
        .unwrap()
        .marketing_opt_out
        .unwrap();
    assert_eq!(mark.actor, Actor::Customer);
    assert_eq!(store.consent_log(customer.id).unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_tokens_get_404() {
    let (workspace, server) = started();
    let genuine = workspace.token(LinkPurpose::Unsubscribe, "c1");
    let mut tampered = genuine.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let foreign_purpose = workspace.token(LinkPurpose::Preferences, "c1");
    let client = server.client();

    for token in [tampered.as_str(), foreign_purpose.as_str(), "garbage"] {
        let response = client
            .post(format!("{}/unsubscribe/{token}", server.url))
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{token}");
        let html = response.text().await.unwrap();
        assert!(html.contains("This link is not valid"), "{html}");
        assert!(!html.contains("Ann"), "{html}");
    }
    let preferences = client
        .get(format!("{}/preferences/{genuine}", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(preferences.status(), StatusCode::NOT_FOUND);
    let store = workspace.store();
    let customer = store.customer_by_external_id("c1").unwrap();
    assert_eq!(store.consent_log(customer.id).unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn healthz_and_metrics_answer() {
    let (_workspace, server) = started();
    post_json(
        &server,
        "/api/v1/decisions",
        json!({"customer": "c1", "channel": "email", "purpose": "care", "offer": true}),
    )
    .await;
    let client = server.client();

    let health = client
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .unwrap();
    let metrics = client
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap();

    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.text().await.unwrap(), "ok\n");
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains("tact_decisions_total{outcome=\"deny\",rule=\"care_offer\"} 1"),
        "{text}"
    );
}

fn maildir_files(workspace: &Workspace) -> Vec<std::path::PathBuf> {
    let folder = workspace.path().join("outbox/new");
    match std::fs::read_dir(folder) {
        Ok(entries) => entries.map(|entry| entry.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn campaign_is_sent_and_drained() {
    let workspace = Workspace::new();
    workspace.append_config(OPEN_ALL_DAY);
    workspace.import_customers();
    workspace.run_ok(&[
        "prefs",
        "set",
        "c2",
        "--marketing",
        "off",
        "--actor",
        "customer",
    ]);
    let template = workspace.write(
        "tips.toml",
        "subject = \"Tips for {{ name }}\"\ntext = \"Hello {{ name }},\\n\\nthree tips.\\n\"\n",
    );
    workspace.run_ok(&[
        "campaign",
        "create",
        "--name",
        "tips",
        "--template",
        template.to_str().unwrap(),
        "--purpose",
        "value",
        "--topic",
        "tips",
    ]);
    let sent = workspace.run_ok(&["campaign", "send", "1"]);
    assert_eq!(
        sent,
        "campaign 1: 1 approved and queued, 0 deferred, 1 denied, 0 skipped\n"
    );

    let server = workspace.serve();
    let deadline = Instant::now() + Duration::from_secs(20);
    while maildir_files(&workspace).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, report) = get_json(&server, "/api/v1/campaigns/1").await;
    let exit = server.stop();

    assert!(exit.success(), "tact serve exited with {exit}");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["by_state"], json!({"denied": 1, "sent": 1}));
    assert_eq!(report["by_rule"], json!({"marketing_opt_out": 1}));
    let files = maildir_files(&workspace);
    assert_eq!(files.len(), 1);
    let message = std::fs::read_to_string(&files[0]).unwrap();
    assert!(message.contains("Subject: Tips for Ann Lee"), "{message}");
    assert!(
        message.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
        "{message}"
    );
    let store = workspace.store();
    let states: Vec<DeliveryState> = ["c1", "c2"]
        .iter()
        .flat_map(|id| {
            let customer = store.customer_by_external_id(id).unwrap();
            store.deliveries_for(customer.id).unwrap()
        })
        .map(|delivery| delivery.state)
        .collect();
    assert_eq!(states, [DeliveryState::Sent, DeliveryState::Denied]);
}

#[tokio::test(flavor = "multi_thread")]
async fn unsubscribe_before_send_wins() {
    let workspace = Workspace::new();
    workspace.append_config(OPEN_ALL_DAY);
    workspace.import_customers();
    let template = workspace.write(
        "tips.toml",
        "subject = \"Tips\"\ntext = \"Hello {{ name }},\\n\"\n",
    );
    workspace.run_ok(&[
        "campaign",
        "create",
        "--name",
        "tips",
        "--template",
        template.to_str().unwrap(),
        "--purpose",
        "value",
        "--audience",
        "all",
    ]);
    workspace.run_ok(&["campaign", "send", "1"]);
    // Approved and queued for both; now c1 unsubscribes before the daemon sends.
    workspace.run_ok(&[
        "prefs",
        "set",
        "c1",
        "--marketing",
        "off",
        "--actor",
        "customer",
    ]);

    let server = workspace.serve();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, report) = get_json(&server, "/api/v1/campaigns/1").await;
        let settled = report["by_state"].get("approved").is_none()
            && report["by_state"].get("sending").is_none();
        if settled || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, report) = get_json(&server, "/api/v1/campaigns/1").await;
    server.stop();

    assert_eq!(report["by_state"], json!({"failed": 1, "sent": 1}));
    assert_eq!(maildir_files(&workspace).len(), 1);
    let store = workspace.store();
    let customer = store.customer_by_external_id("c1").unwrap();
    let delivery = &store.deliveries_for(customer.id).unwrap()[0];
    assert_eq!(
        delivery.last_error.as_deref(),
        Some("denied at send time by marketing_opt_out")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn debug_log_omits_link_tokens() {
    let workspace = Workspace::new();
    workspace.import_customers();
    let server = workspace.serve_with(&[("TACT_LOG", "debug")]);
    let token = workspace.token(LinkPurpose::Unsubscribe, "c1");

    let page = server
        .client()
        .get(format!("{}/unsubscribe/{token}", server.url))
        .send()
        .await
        .unwrap();
    let status = page.status();
    drop(page);
    let log = server.log();
    server.stop();

    assert_eq!(status, StatusCode::OK);
    assert!(log.contains("route=\"/unsubscribe/{token}\""), "{log}");
    assert!(!log.contains(&token), "{log}");
}

/// Returns the value of header `name` in `message`, with folded lines joined.
fn unfolded_header(message: &str, name: &str) -> Option<String> {
    let head = message.split("\r\n\r\n").next().unwrap_or(message);
    let head = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    let prefix = format!("{name}: ");
    head.lines()
        .find_map(|line| line.strip_prefix(prefix.as_str()))
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread")]
async fn list_unsubscribe_header_unsubscribes() {
    let workspace = Workspace::new();
    workspace.append_config(OPEN_ALL_DAY);
    workspace.import_customers();
    workspace.create_tips_campaign();
    workspace.run_ok(&["campaign", "send", "1"]);
    let server = workspace.serve();
    let deadline = Instant::now() + Duration::from_secs(20);
    while maildir_files(&workspace).len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let message = maildir_files(&workspace)
        .iter()
        .map(|file| std::fs::read_to_string(file).unwrap())
        .find(|message| message.contains("ann@example.com"))
        .expect("a message to Ann");
    let header = unfolded_header(&message, "List-Unsubscribe").expect("List-Unsubscribe");
    let base_url = workspace.config_value("public_url");
    let base_url = base_url.trim_end_matches('/');

    let (link, mailto) = header.split_once(", ").expect("two entries");
    let link = link.trim_matches(|c| c == '<' || c == '>');
    let token = link
        .strip_prefix(&format!("{base_url}/unsubscribe/"))
        .unwrap_or_else(|| panic!("{link} is not under {base_url}"));
    let mailto = mailto.trim_matches(|c| c == '<' || c == '>');
    let response = server
        .client()
        .post(format!("{}/unsubscribe/{token}", server.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    let status = response.status();
    let exit = server.stop();

    assert!(exit.success(), "tact serve exited with {exit}");
    assert_eq!(
        mailto,
        format!(
            "mailto:{}?subject=unsubscribe-{token}",
            workspace.config_value("unsubscribe_mailto")
        )
    );
    assert_eq!(status, StatusCode::OK);
    let store = workspace.store();
    let ann = store.customer_by_external_id("c1").unwrap();
    let opt_out = store.preferences(ann.id).unwrap().marketing_opt_out;
    assert_eq!(opt_out.map(|mark| mark.actor), Some(Actor::Customer));
}
