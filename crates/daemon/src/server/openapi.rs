//! The OpenAPI document of `/api/v1`, hand-written and served as is.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use super::AppState;

/// The document; a test checks that it lists every route of [`super::api::routes`].
pub const DOCUMENT: &str = include_str!("openapi.json");

/// `GET /api/v1/openapi.json`, served without the token because it contains no data.
pub fn routes() -> Router<AppState> {
    Router::new().route("/openapi.json", get(document))
}

async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}
