//! The HTTP side every role service shares: serving with TLS by
//! configuration, body limits, request metrics, `GET /healthz`,
//! `GET /metrics`, `GET /openapi.json`, and reading who is calling.

use crate::error::{ServiceCode, ServiceError};
use crate::metrics::Metrics;
use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::sync::Arc;
use std::time::Instant;

/// The largest request body any endpoint takes.
pub const BODY_BYTES_MAX: usize = 256 * 1024;

/// The bearer token in `Authorization`, or a refusal naming how to log in.
pub fn bearer(headers: &HeaderMap) -> Result<&str, ServiceError> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 128)
        .ok_or_else(|| {
            ServiceError::new(
                ServiceCode::Unauthenticated,
                "no session: log in with POST /auth/challenge and POST /auth/session, then send Authorization: Bearer <token>",
            )
        })
}

#[allow(clippy::disallowed_methods)] // request latency is wall time at the edge
async fn measure(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let started = Instant::now();
    let response = next.run(request).await;
    metrics.request(
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// Wraps a role's whole router: body limit, JSON refusals for bodies that
/// do not parse, metrics, `GET /metrics` and `GET /openapi.json`.
pub fn finish(router: Router, metrics: Metrics, openapi: utoipa::openapi::OpenApi) -> Router {
    let doc = Arc::new(
        openapi
            .to_pretty_json()
            .expect("an OpenAPI document serializes"),
    );
    let m = metrics.clone();
    router
        .route(
            "/metrics",
            axum::routing::get(move || {
                let m = m.clone();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4",
                        )],
                        m.render(),
                    )
                }
            }),
        )
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let doc = Arc::clone(&doc);
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        doc.as_str().to_owned(),
                    )
                        .into_response()
                }
            }),
        )
        .layer(axum::middleware::from_fn_with_state(metrics, measure))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_BYTES_MAX))
}

/// A JSON body, or a refusal in the services' error shape.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for Json<T> {
    type Rejection = ServiceError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(e) => Err(ServiceError::new(
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ServiceCode::TooLarge
                } else {
                    ServiceCode::BadRequest
                },
                e.body_text(),
            )),
        }
    }
}
