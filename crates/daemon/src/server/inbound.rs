//! `POST /api/v1/inbound`: one returned message as the request body.
//!
//! The route has its own body limit, `bounces.max_message_bytes` (25 MiB by default),
//! because a returned message often carries the whole original. Every other route keeps
//! `http.max_body_bytes`.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router, middleware};
use serde_json::{Value, json};
use tact_storage::Store;
use tower_http::limit::RequestBodyLimitLayer;

use super::{ApiError, AppState};
use crate::inbound::{Effect, Ingestor, Mode, Outcome};

/// Media types accepted for the message: `message/rfc822` and `application/octet-stream`.
const ACCEPTED_TYPES: [&str; 2] = ["message/rfc822", "application/octet-stream"];

/// Builds the route with its bearer-token check and body limit.
pub(super) fn routes(state: &AppState) -> Router<AppState> {
    let limit = state.settings().config.bounces.max_message_bytes;
    Router::new()
        .route("/api/v1/inbound", post(create_inbound))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            super::require_token,
        ))
        .layer(DefaultBodyLimit::max(limit))
        .layer(RequestBodyLimitLayer::new(limit))
}

async fn create_inbound(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if !accepted_type(&headers) {
        let message = "send the message as message/rfc822 or application/octet-stream";
        let body = Json(json!({ "error": message }));
        return Ok((StatusCode::UNSUPPORTED_MEDIA_TYPE, body).into_response());
    }
    let ingestor = Ingestor::new(state.inner.links.clone(), state.settings());
    let database = state.settings().database.clone();
    let now = state.now();
    // A connection of its own, because mapping a report by address can read every customer,
    // and the shared connection would hold up every other request meanwhile.
    let outcomes = tokio::task::spawn_blocking(move || {
        let store = Store::open(&database)?;
        anyhow::Ok(ingestor.ingest(&store, &body, now, Mode::Apply)?)
    })
    .await
    .map_err(|error| ApiError::Internal(anyhow::anyhow!("ingest task failed: {error}")))??;
    let reports: Vec<Value> = outcomes.iter().map(outcome_json).collect();
    Ok(Json(json!({ "reports": reports })).into_response())
}

fn accepted_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return false;
    };
    let media_type = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim();
    ACCEPTED_TYPES
        .iter()
        .any(|accepted| accepted.eq_ignore_ascii_case(media_type))
}

/// Builds the JSON line of `tact ingest-mail --json` with `effect` and, for a suppression,
/// `suppression` added.
fn outcome_json(outcome: &Outcome) -> Value {
    let mut value: Value = serde_json::from_str(&outcome.to_json_line()).unwrap_or_default();
    if let Value::Object(fields) = &mut value {
        fields.insert("effect".into(), outcome.effect.as_str().into());
        if let Effect::Suppressed(reason) = outcome.effect {
            fields.insert("suppression".into(), reason.as_str().into());
        }
    }
    value
}
