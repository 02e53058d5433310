//! The node API: HTTP/JSON for clients and role services (see
//! `docs/API.md` and `GET /openapi.json`).
//!
//! Reads of the ledger answer from the last finalized state and carry the
//! height and state root they were read at. A transaction is accepted by its
//! signature: the ledger decides what its signer's roles allow. Every route
//! is registered with its OpenAPI description, so the document served is
//! generated from the handlers and the `tranche-api` types they answer.

mod admin;
mod chain;
mod ledger;
mod proofs;
mod transfers;

use axum::extract::Extension;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::{Arc, RwLock};
use tranche_api::node::At;
use tranche_api::{ErrorBody, ErrorCode};
use tranche_block::AdmitError;
use tranche_consensus::{Finalized, Mailbox, Start};
use tranche_ledger::Ledger;
use tranche_storage::ChainStore;
use tranche_types::{ChainId, Hash, OrgId, PublicKey, Timestamp};
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use tranche_api::{BATCH_BODY_BYTES_MAX, BATCH_TXS_MAX, BODY_BYTES_MAX, TRANSFERS_MAX};
pub use transfers::TransferQuery;

/// The last finalized state, as readers see it.
#[derive(Clone, Debug)]
pub struct View {
    /// Its height.
    pub height: u64,
    /// The hash of the block at that height (zero before the first).
    pub block_hash: Hash,
    /// That block's time.
    pub time: Timestamp,
    /// The state root after it.
    pub state_root: Hash,
    /// The ledger after it.
    pub ledger: Arc<Ledger>,
}

impl View {
    /// The view of where a node starts.
    pub fn of_start(start: &Start) -> View {
        View {
            height: start.tip.height,
            block_hash: start.tip.hash,
            time: start.tip.time,
            state_root: start.ledger.state_root(),
            ledger: Arc::new(start.ledger.clone()),
        }
    }
}

/// What the API handlers share with the node.
#[derive(Debug)]
pub struct Shared {
    /// The chain.
    pub chain_id: ChainId,
    /// This node's organisation, if its key is one's.
    pub org: Option<OrgId>,
    /// This node's key.
    pub me: PublicKey,
    /// The finalized chain.
    pub store: Arc<ChainStore>,
    /// The application, for submissions.
    pub mailbox: Mailbox,
    /// The last finalized state.
    pub view: RwLock<Arc<View>>,
    /// Finalized blocks, for live streams.
    pub events: tokio::sync::broadcast::Sender<Arc<Finalized>>,
}

impl Shared {
    /// The current view.
    pub fn view(&self) -> Arc<View> {
        Arc::clone(&self.view.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Makes a finalized block visible to readers and streams.
    pub fn publish(&self, f: Finalized) {
        let view = Arc::new(View {
            height: f.block.header.height,
            block_hash: f.block.hash(),
            time: f.block.header.time,
            state_root: f.state_root,
            ledger: Arc::clone(&f.ledger),
        });
        *self.view.write().unwrap_or_else(|e| e.into_inner()) = view;
        // Nobody listening is fine.
        let _ = self.events.send(Arc::new(f));
    }
}

/// An API error: a stable code (which decides the HTTP status) and a
/// message a person can act on.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
}

impl ApiError {
    pub(super) fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }
    pub(super) fn not_found(what: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::NotFound, what)
    }
    pub(super) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::BadRequest, message)
    }
    pub(super) fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.code,
            message: self.message.clone(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.status())
            .expect("every error code has a valid HTTP status");
        (status, Json(self.body())).into_response()
    }
}

impl From<tranche_storage::StorageError> for ApiError {
    fn from(e: tranche_storage::StorageError) -> ApiError {
        tracing::error!(error = %e, "storage read failed");
        ApiError::new(ErrorCode::Storage, "the node's storage failed; see its log")
    }
}

pub(super) fn admit_error(e: AdmitError) -> ApiError {
    let code = match &e {
        AdmitError::TooLarge(_) => ErrorCode::TxTooLarge,
        AdmitError::Invalid(_) => ErrorCode::TxInvalid,
        AdmitError::Expired(_) => ErrorCode::TxExpired,
        AdmitError::ValidityTooLong(_) => ErrorCode::TxValidityTooLong,
        AdmitError::NonceUsed { .. } => ErrorCode::NonceUsed,
        AdmitError::NonceTooFar { .. } => ErrorCode::NonceTooFar,
        AdmitError::NonceTaken(_) => ErrorCode::NonceTaken,
        AdmitError::Full(_) => ErrorCode::MempoolFull,
    };
    ApiError::new(code, e.to_string())
}

type Answer<T> = Result<Json<T>, ApiError>;

/// Parses a path or query value through the type's own validated form.
fn parse<T: DeserializeOwned>(what: &str, text: &str) -> Result<T, ApiError> {
    serde_json::from_value(Value::String(text.to_string()))
        .map_err(|e| ApiError::bad_request(format!("{what} {text:?} is not valid: {e}")))
}

/// A ledger answer, with the height and state root it was read at.
fn at<T>(view: &View, data: T) -> Answer<At<T>> {
    Ok(Json(At {
        height: view.height,
        state_root: view.state_root,
        data,
    }))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Tranche node API",
        description = "A node's HTTP/JSON API: submit transactions, read the finalized chain and the ledger, follow transfers. See docs/API.md.",
        license(name = "Apache-2.0")
    ),
    components(schemas(ErrorBody, ErrorCode))
)]
struct NodeApi;

/// The node API's routes and the OpenAPI document describing exactly them,
/// both from the same registrations.
fn routes() -> (Router<Arc<Shared>>, utoipa::openapi::OpenApi) {
    let (batch_schemas, batch_paths, batch_router) = routes!(chain::submit_batch);
    OpenApiRouter::with_openapi(NodeApi::openapi())
        .routes(routes!(openapi))
        .routes(routes!(chain::status))
        .routes(routes!(chain::submit))
        .routes((
            batch_schemas,
            batch_paths,
            batch_router.layer(axum::extract::DefaultBodyLimit::max(BATCH_BODY_BYTES_MAX)),
        ))
        .routes(routes!(chain::transaction))
        .routes(routes!(chain::latest_block))
        .routes(routes!(chain::block))
        .routes(routes!(chain::nonce))
        .routes(routes!(chain::validators))
        .routes(routes!(chain::policy))
        .routes(routes!(chain::aml_policy))
        .routes(routes!(ledger::organisation))
        .routes(routes!(ledger::organisation_of_key))
        .routes(routes!(ledger::wallet))
        .routes(routes!(ledger::token))
        .routes(routes!(ledger::asset))
        .routes(routes!(ledger::ownership))
        .routes(routes!(ledger::issuance))
        .routes(routes!(ledger::offering))
        .routes(routes!(ledger::revocation))
        .routes(routes!(admin::check_transfer, admin::check_transfer_body))
        .routes(routes!(admin::token_rules))
        .routes(routes!(admin::token_documents))
        .routes(routes!(admin::ballot))
        .routes(routes!(admin::hold))
        .routes(routes!(admin::instruction))
        .routes(routes!(ledger::check_holder))
        .routes(routes!(proofs::balance))
        .routes(routes!(proofs::issuance))
        .routes(routes!(proofs::revocation))
        .routes(routes!(proofs::claim))
        .routes(routes!(proofs::custody))
        .routes(routes!(transfers::transfers))
        .routes(routes!(transfers::events))
        .split_for_parts()
}

/// Every route the node serves, before it is given the node's state, and
/// the OpenAPI document describing exactly them (served at `/openapi.json`).
pub fn service() -> (Router<Arc<Shared>>, utoipa::openapi::OpenApi) {
    let (router, doc) = routes();
    let json = Arc::new(doc.to_json().expect("the OpenAPI document serializes"));
    let router = router
        .layer(Extension(json))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_BYTES_MAX));
    (router, doc)
}

/// The node API's router, serving `shared`.
pub fn router(shared: Arc<Shared>) -> Router {
    service().0.with_state(shared)
}

/// Serves the API on `listener` (over TLS with `tls`) until the runtime stops.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    shared: Arc<Shared>,
) {
    if let Err(e) = tranche_api::tls::serve(listener, tls, router(shared)).await {
        tracing::error!(error = %e, "the node API failed");
    }
}

/// This API's OpenAPI 3.1 document, generated from its handlers and types.
#[utoipa::path(get, path = "/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json")))]
async fn openapi(Extension(doc): Extension<Arc<String>>) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        doc.as_str().to_owned(),
    )
        .into_response()
}
