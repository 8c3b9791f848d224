//! Generated JSON bodies for every API route of one running daemon: each gets a 2xx, 404 or
//! 422 answer whose error names the field, never a 500, and the daemon keeps serving.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::Workspace;

/// JSON values that are valid for some field, of the wrong type, or hostile.
fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!("c1")),
        Just(json!("email")),
        Just(json!("value")),
        Just(json!("sales")),
        Just(json!("declined")),
        Just(json!("2026-03-01T10:00:00Z")),
        Just(json!("9999-12-31T23:59:59Z")),
        Just(json!("Mars/Base")),
        Just(json!(-1)),
        Just(json!(4_294_967_296_u64)),
        Just(json!(1.5)),
        Just(json!(true)),
        Just(Value::Null),
        Just(json!([])),
        Just(json!({})),
        Just(json!("x' OR '1'='1")),
        Just(json!("line\r\nbreak\u{0}")),
        "\\PC{0,12}".prop_map(Value::from),
    ]
}

fn body() -> impl Strategy<Value = Value> {
    let keys = prop_oneof![
        Just("customer"),
        Just("channel"),
        Just("purpose"),
        Just("topic"),
        Just("offer"),
        Just("duration_s"),
        Just("at"),
        Just("record"),
        Just("kind"),
        Just("name"),
        Just("email"),
        Just("timezone"),
        Just("fields"),
        Just("actor"),
        Just("changes"),
        Just("colour"),
    ];
    prop::collection::btree_map(keys, leaf(), 0..8)
        .prop_map(|map| Value::Object(map.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
}

const ROUTES: [(&str, &str); 5] = [
    ("POST", "/api/v1/decisions"),
    ("POST", "/api/v1/contacts"),
    ("POST", "/api/v1/signals"),
    ("PUT", "/api/v1/customers/c1"),
    ("PATCH", "/api/v1/customers/c1/preferences"),
];

#[test]
fn api_bodies_never_cause_500() {
    let workspace = Workspace::new();
    workspace.import_customers();
    let server = workspace.serve();
    let client = server.client();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let config = Config {
        cases: 400,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);

    let result = runner.run(&(0..ROUTES.len(), body()), |(route, body)| {
        let (method, path) = ROUTES[route];
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let (status, text) = runtime.block_on(async {
            let response = client
                .request(method, format!("{}{path}", server.url))
                .bearer_auth(&server.token)
                .json(&body)
                .send()
                .await
                .unwrap();
            (response.status(), response.text().await.unwrap())
        });
        prop_assert!(status.as_u16() < 500, "{path} {body} -> {status} {text}");
        if status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::BAD_REQUEST {
            prop_assert!(text.contains("error"), "{path} {body} -> {text}");
        }
        Ok(())
    });

    assert!(result.is_ok(), "{result:?}\n{}", server.log());
    let health = runtime.block_on(async {
        let response = client
            .get(format!("{}/healthz", server.url))
            .send()
            .await
            .unwrap();
        response.text().await.unwrap()
    });
    assert_eq!(health, "ok\n");
    let check: String = rusqlite::Connection::open(workspace.path().join("tact.db"))
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}
