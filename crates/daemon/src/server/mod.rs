//! The HTTP server: the JSON API under `/api/v1`, the unsubscribe and preference-centre
//! pages, `/healthz` and `/metrics`.

mod api;
mod error;
mod inbound;
mod openapi;
mod pages;

pub use error::ApiError;

use anyhow::Context;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::{Arc, Mutex};
use subtle::ConstantTimeEq;
use tact_delivery::token::LinkKey;
use tact_storage::Store;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

use crate::clock::SharedClock;
use crate::config::Settings;

/// The state every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: Settings,
    clock: SharedClock,
    api_token: String,
    links: LinkKey,
    // One connection for all requests: SQLite takes one writer at a time anyway, and holding
    // the lock across decide and record makes `record: true` decisions atomic in this process.
    store: Mutex<Store>,
    pages: minijinja::Environment<'static>,
    metrics: Option<PrometheusHandle>,
}

impl AppState {
    /// Builds the shared state from validated settings.
    ///
    /// # Errors
    ///
    /// Fails when the API token or link key is missing or the database cannot be opened.
    pub fn new(
        settings: Settings,
        clock: SharedClock,
        metrics: Option<PrometheusHandle>,
    ) -> anyhow::Result<AppState> {
        let api_token = settings.api_token()?.to_owned();
        let links = LinkKey::new(&settings.secret_key()?).context("invalid links.secret_key")?;
        let store = Store::open(&settings.database)
            .with_context(|| format!("cannot open database {}", settings.database.display()))?;
        Ok(AppState {
            inner: Arc::new(Inner {
                settings,
                clock,
                api_token,
                links,
                store: Mutex::new(store),
                pages: pages::environment(),
                metrics,
            }),
        })
    }

    fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.inner.clock.now()
    }

    /// Runs `work` with the store on a blocking thread.
    async fn with_store<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, ApiError> + Send + 'static,
    {
        let state = self.clone();
        tokio::task::spawn_blocking(move || {
            let store = state
                .inner
                .store
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            work(&store)
        })
        .await
        .map_err(|error| ApiError::Internal(anyhow::anyhow!("store task failed: {error}")))?
    }
}

/// Builds the router with every route, the auth layer on `/api/v1` and the body limit.
pub fn router(state: AppState) -> Router {
    let limit = state.settings().config.http.max_body_bytes;
    let protected =
        api::routes().route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .nest("/api/v1", protected.merge(openapi::routes()))
        .merge(pages::routes())
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(limit))
        .layer(RequestBodyLimitLayer::new(limit))
        // After the limit layers, so the inbound route keeps its own, larger limit.
        .merge(inbound::routes(&state))
        .layer(middleware::from_fn(json_errors))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(state)
}

/// Turns the plain-text client errors that axum and tower-http write themselves (413 for a
/// body over the limit, 400 for a path that does not parse, …) into the API's
/// `{"error": …}` shape, for routes under `/api/`.
async fn json_errors(request: Request, next: Next) -> Response {
    let api = request.uri().path().starts_with("/api/");
    let response = next.run(request).await;
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if !api || json || !response.status().is_client_error() {
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).trim().to_owned();
    let message = if parts.status == StatusCode::PAYLOAD_TOO_LARGE {
        "the request body is too large; the limit is http.max_body_bytes, or \
         bounces.max_message_bytes for /api/v1/inbound"
            .to_owned()
    } else if text.is_empty() {
        parts
            .status
            .canonical_reason()
            .unwrap_or("request rejected")
            .to_owned()
    } else {
        text
    };
    let body = axum::Json(serde_json::json!({ "error": message }));
    (parts.status, body).into_response()
}

/// Serves HTTP on `listener` until `shutdown` is cancelled, then finishes open requests.
///
/// # Errors
///
/// Fails when the server cannot accept connections.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
        .context("HTTP server failed")
}

/// Opens the span of one request with its method and route pattern, such as
/// `/unsubscribe/{token}`. The concrete path is left out because it carries link tokens.
fn request_span(request: &Request) -> tracing::Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("(no route)", MatchedPath::as_str);
    tracing::debug_span!("request", method = %request.method(), route)
}

async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default();
    let expected = state.inner.api_token.as_bytes();
    if !bool::from(presented.as_bytes().ct_eq(expected)) {
        return Err(ApiError::Unauthorized);
    }
    Ok(next.run(request).await)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn metrics(State(state): State<AppState>) -> Response {
    match &state.inner.metrics {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are not enabled\n").into_response(),
    }
}
