//! The node API: HTTP/JSON for clients and role services (see
//! `docs/API.md` and `GET /openapi.json`).
//!
//! Reads of the ledger answer from the last finalized state and carry the
//! height and state root they were read at. A transaction is accepted by its
//! signature: the ledger decides what its signer's roles allow.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::stream::Stream;
use futures_util::StreamExt as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::convert::Infallible;
use std::sync::{Arc, RwLock};
use tokio_stream::wrappers::BroadcastStream;
use tranche_block::AdmitError;
use tranche_consensus::{Finalized, Mailbox, Start};
use tranche_ledger::{Ledger, LedgerEvent, TransferRecord};
use tranche_storage::{ChainStore, TransferFilter};
use tranche_types::{
    AssetId, ChainId, Hash, OrgId, PublicKey, RequestId, SignedTransaction, Timestamp, TokenId,
    WalletAddress,
};

/// The OpenAPI document served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");
use tranche_api::{ErrorBody, ErrorCode, TRANSFERS_DEFAULT};
pub use tranche_api::{BATCH_BODY_BYTES_MAX, BATCH_TXS_MAX, BODY_BYTES_MAX, TRANSFERS_MAX};

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
    fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }
    fn not_found(what: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::NotFound, what)
    }
    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::BadRequest, message)
    }
    fn body(&self) -> ErrorBody {
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

fn admit_error(e: AdmitError) -> ApiError {
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

type ApiResult = Result<Json<Value>, ApiError>;

/// Parses a path or query value through the type's own validated form.
fn parse<T: DeserializeOwned>(what: &str, text: &str) -> Result<T, ApiError> {
    serde_json::from_value(Value::String(text.to_string()))
        .map_err(|e| ApiError::bad_request(format!("{what} {text:?} is not valid: {e}")))
}

/// A ledger answer, with the height and state root it was read at.
fn at(view: &View, data: impl Serialize) -> ApiResult {
    Ok(Json(json!({
        "height": view.height,
        "state_root": view.state_root,
        "data": data,
    })))
}

/// Every path the API serves (the OpenAPI document lists the same).
pub const ROUTES: &[&str] = &[
    "/openapi.json",
    "/status",
    "/transactions",
    "/transactions/batch",
    "/transactions/{hash}",
    "/blocks/latest",
    "/blocks/{height}",
    "/signers/{key}/nonce",
    "/organisations/{org}",
    "/validators",
    "/wallets/{address}",
    "/tokens/{token}",
    "/assets/{asset}",
    "/issuances/{request}",
    "/revocations/{request}",
    "/transfers",
    "/events",
];

/// The node API's routes.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/status", get(status))
        .route("/transactions", post(submit))
        .route(
            "/transactions/batch",
            post(submit_batch).layer(axum::extract::DefaultBodyLimit::max(BATCH_BODY_BYTES_MAX)),
        )
        .route("/transactions/{hash}", get(transaction))
        .route("/blocks/latest", get(latest_block))
        .route("/blocks/{height}", get(block))
        .route("/signers/{key}/nonce", get(nonce))
        .route("/organisations/{org}", get(organisation))
        .route("/validators", get(validators))
        .route("/wallets/{address}", get(wallet))
        .route("/tokens/{token}", get(token))
        .route("/assets/{asset}", get(asset))
        .route("/issuances/{request}", get(issuance))
        .route("/revocations/{request}", get(revocation))
        .route("/transfers", get(transfers))
        .route("/events", get(events))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_BYTES_MAX))
        .with_state(shared)
}

/// Serves the API on `listener` (over TLS with `tls`) until the runtime stops.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    shared: Arc<Shared>,
) {
    let result = match tls {
        Some(config) => match crate::tls::TlsListener::new(listener, config) {
            Ok(listener) => axum::serve(listener, router(shared)).await,
            Err(e) => Err(e),
        },
        None => axum::serve(listener, router(shared)).await,
    };
    if let Err(e) = result {
        tracing::error!(error = %e, "the node API failed");
    }
}

async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
        .into_response()
}

async fn status(State(s): State<Arc<Shared>>) -> ApiResult {
    let view = s.view();
    Ok(Json(json!({
        "chain_id": s.chain_id,
        "org": s.org,
        "key": s.me,
        "finalized_height": view.height,
        "block_hash": view.block_hash,
        "block_time": view.time,
        "state_root": view.state_root,
        "epoch": view.ledger.committee().epoch,
        "validating": view.ledger.committee().members.0.iter().any(|m| m.key == s.me),
        "validators": view.ledger.committee().members.0,
    })))
}

async fn submit(
    State(s): State<Arc<Shared>>,
    body: Result<Json<SignedTransaction>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(stx) = body.map_err(|e| {
        ApiError::bad_request(format!(
            "the body is not a signed transaction in JSON (as `tranche tx sign --format json` writes it): {}",
            e.body_text()
        ))
    })?;
    let hash = stx.hash();
    // Resubmitting a finalized transaction is harmless: say where it is.
    if let Some((height, index)) = s.store.transaction(&hash)? {
        return Ok((
            StatusCode::OK,
            Json(json!({"hash": hash, "status": "finalized", "height": height, "index": index})),
        ));
    }
    let hash = s.mailbox.submit(stx).await.map_err(admit_error)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"hash": hash, "status": "pending"})),
    ))
}

async fn submit_batch(
    State(s): State<Arc<Shared>>,
    body: Result<Json<Vec<SignedTransaction>>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    let Json(txs) = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::new(
                ErrorCode::TooLarge,
                format!("a batch body may be at most {BATCH_BODY_BYTES_MAX} bytes; send fewer transactions at a time"),
            );
        }
        ApiError::bad_request(format!(
            "the body is not a JSON array of signed transactions (each as `tranche tx sign --format json` writes it): {}",
            e.body_text()
        ))
    })?;
    if txs.len() > BATCH_TXS_MAX {
        return Err(ApiError::new(
            ErrorCode::TooLarge,
            format!(
                "the batch holds {} transactions; at most {BATCH_TXS_MAX} are allowed",
                txs.len()
            ),
        ));
    }
    let mut results: Vec<Option<Value>> = Vec::with_capacity(txs.len());
    let mut pending = Vec::with_capacity(txs.len());
    for stx in txs {
        let hash = stx.hash();
        // Resubmitting a finalized transaction is harmless: say where it is.
        match s.store.transaction(&hash)? {
            Some((height, index)) => results.push(Some(
                json!({"hash": hash, "status": "finalized", "height": height, "index": index}),
            )),
            None => {
                results.push(None);
                pending.push((hash, stx));
            }
        }
    }
    let (hashes, txs): (Vec<Hash>, Vec<SignedTransaction>) = pending.into_iter().unzip();
    let mut answers = s.mailbox.submit_batch(txs).await.into_iter().zip(hashes);
    let mut refused = 0usize;
    for slot in results.iter_mut().filter(|r| r.is_none()) {
        let (answer, hash) = answers
            .next()
            .expect("one answer per transaction submitted");
        *slot = Some(match answer {
            Ok(hash) => json!({"hash": hash, "status": "pending"}),
            Err(e) => {
                refused += 1;
                let e = admit_error(e);
                json!({"hash": hash, "error": e.body()})
            }
        });
    }
    Ok(Json(json!({
        "accepted": results.len() - refused,
        "refused": refused,
        "results": results,
    })))
}

async fn transaction(State(s): State<Arc<Shared>>, Path(hash): Path<String>) -> ApiResult {
    let hash: Hash = parse("transaction hash", &hash)?;
    let Some((height, index)) = s.store.transaction(&hash)? else {
        return Err(ApiError::not_found(format!(
            "transaction {hash} is not finalized on this node (yet): if it was accepted, ask again shortly"
        )));
    };
    let receipts = s
        .store
        .receipts(height)?
        .ok_or_else(|| ApiError::not_found(format!("block {height}")))?;
    let receipt = usize::try_from(index)
        .ok()
        .and_then(|i| receipts.get(i))
        .ok_or_else(|| ApiError::not_found(format!("receipt {index} of block {height}")))?;
    let block = s.store.block(height)?;
    let stx = block
        .as_ref()
        .and_then(|b| usize::try_from(index).ok().and_then(|i| b.txs.get(i)));
    let mut answer = json!({
        "hash": hash,
        "status": "finalized",
        "height": height,
        "index": index,
        "block_time": block.as_ref().map(|b| b.header.time),
        "receipt": receipt,
    });
    // What an applied transaction created at an address derived on chain,
    // so its sender need not work the address out.
    if let (Some(stx), tranche_types::Outcome::Applied) = (stx, &receipt.outcome) {
        if let tranche_types::Payload::OpenCustodialWallet(p) = &stx.tx.payload {
            let view = s.view();
            if let Some(org) = view.ledger.state().org_by_key.get(&stx.tx.signer) {
                answer["custodial_wallet"] = json!(Ledger::custodial_wallet(org, &p.holder));
            }
        }
    }
    Ok(Json(answer))
}

async fn block_at(s: &Shared, height: u64) -> ApiResult {
    let block = s
        .store
        .block(height)?
        .ok_or_else(|| ApiError::not_found(format!("no finalized block at height {height}")))?;
    let receipts = s.store.receipts(height)?.unwrap_or_default();
    let root = s.store.state_root(height)?;
    Ok(Json(json!({
        "hash": block.hash(),
        "height": height,
        "state_root": root,
        "block": block,
        "receipts": receipts,
    })))
}

async fn latest_block(State(s): State<Arc<Shared>>) -> ApiResult {
    let height = s.view().height;
    block_at(&s, height).await
}

async fn block(State(s): State<Arc<Shared>>, Path(height): Path<String>) -> ApiResult {
    let height: u64 = height
        .parse()
        .map_err(|_| ApiError::bad_request(format!("height {height:?} is not a number")))?;
    block_at(&s, height).await
}

async fn nonce(State(s): State<Arc<Shared>>, Path(key): Path<String>) -> ApiResult {
    let key: PublicKey = parse("public key", &key)?;
    let view = s.view();
    at(&view, json!({"next_nonce": view.ledger.next_nonce(&key)}))
}

/// The committee signing consensus votes, every bonded validator with its
/// stake and standing, and every equivocation recorded (C-2).
async fn validators(State(s): State<Arc<Shared>>) -> ApiResult {
    let view = s.view();
    let state = view.ledger.state();
    let elected = view.ledger.next_committee();
    at(
        &view,
        json!({
            "epoch": view.ledger.committee().epoch,
            "epoch_blocks": view.ledger.params().epoch_blocks,
            "next_epoch_at": view.ledger.epoch_end(view.ledger.committee().epoch),
            "committee": view.ledger.committee().members.0,
            "validators": state.validators.iter().map(|(org, v)| json!({
                "org": org,
                "consensus_key": v.consensus_key,
                "bonded": v.bonded.to_string(),
                "delegated": v.delegated.to_string(),
                "tombstoned": v.tombstoned,
                "elected": elected.iter().any(|m| m.org == *org),
            })).collect::<Vec<_>>(),
            "equivocations": state.equivocations.iter().map(|((key, epoch, view), e)| json!({
                "org": e.org,
                "key": key,
                "epoch": epoch,
                "view": view,
                "kind": e.kind,
                "height": e.height,
                "slashed": e.slashed.to_string(),
                "evidence": e.evidence,
            })).collect::<Vec<_>>(),
        }),
    )
}

async fn organisation(State(s): State<Arc<Shared>>, Path(org): Path<String>) -> ApiResult {
    let org: OrgId = parse("organisation", &org)?;
    let view = s.view();
    let o = view
        .ledger
        .organisation(&org)
        .ok_or_else(|| ApiError::not_found(format!("no organisation {org}")))?;
    at(
        &view,
        json!({
            "org": org,
            "key": o.key,
            "roles": o.roles.list(),
            "governor": o.governor,
            "validator": view.ledger.state().validators.get(&org),
        }),
    )
}

async fn wallet(State(s): State<Arc<Shared>>, Path(address): Path<String>) -> ApiResult {
    let address: WalletAddress = parse("wallet address", &address)?;
    let view = s.view();
    let state = view.ledger.state();
    let balances: Vec<Value> = state
        .balances
        .iter()
        .filter(|((_, w), _)| *w == address)
        .map(|((t, _), units)| json!({"token": t, "units": units}))
        .collect();
    let frozen: Vec<&TokenId> = state
        .freezes
        .keys()
        .filter(|(_, w)| *w == address)
        .map(|(t, _)| t)
        .collect();
    // The custodial wallets kept for this wallet's identity (SR-3).
    let custodial: Vec<Value> = view
        .ledger
        .identity(&address)
        .map(|did| {
            state
                .did_wallets
                .range((did.clone(), WalletAddress([0; 20]))..)
                .take_while(|((d, _), ())| d == did)
                .filter_map(|((_, w), ())| {
                    state
                        .custody
                        .get(w)
                        .filter(|_| *w != address)
                        .map(|c| json!({"wallet": w, "custodian": c.custodian}))
                })
                .collect()
        })
        .unwrap_or_default();
    at(
        &view,
        json!({
            "address": address,
            "did": view.ledger.identity(&address),
            "custody": state.custody.get(&address),
            "balances": balances,
            "frozen_tokens": frozen,
            "custodial_wallets": custodial,
        }),
    )
}

async fn token(State(s): State<Arc<Shared>>, Path(token): Path<String>) -> ApiResult {
    let token: TokenId = parse("token", &token)?;
    let view = s.view();
    let t = view
        .ledger
        .token(&token)
        .ok_or_else(|| ApiError::not_found(format!("no token {token}")))?;
    at(
        &view,
        json!({
            "token": t,
            "supply": view.ledger.supply(&token),
            "revocation_wallet": Ledger::revocation_wallet(&token),
        }),
    )
}

async fn asset(State(s): State<Arc<Shared>>, Path(asset): Path<String>) -> ApiResult {
    let asset: AssetId = parse("asset", &asset)?;
    let view = s.view();
    let a = view
        .ledger
        .state()
        .assets
        .get(&asset)
        .ok_or_else(|| ApiError::not_found(format!("no asset {asset}")))?;
    at(&view, a)
}

async fn issuance(State(s): State<Arc<Shared>>, Path(request): Path<String>) -> ApiResult {
    let request: RequestId = parse("request", &request)?;
    let view = s.view();
    let state = view.ledger.state();
    let r = state
        .issuances
        .get(&request)
        .ok_or_else(|| ApiError::not_found(format!("no issuance request {request}")))?;
    at(
        &view,
        json!({"request": r, "check": view.ledger.issuance_check(&request)}),
    )
}

async fn revocation(State(s): State<Arc<Shared>>, Path(request): Path<String>) -> ApiResult {
    let request: RequestId = parse("request", &request)?;
    let view = s.view();
    let r = view
        .ledger
        .state()
        .revocations
        .get(&request)
        .ok_or_else(|| ApiError::not_found(format!("no revocation request {request}")))?;
    at(
        &view,
        json!({"request": r, "check": view.ledger.revocation_check(&request)}),
    )
}

/// Filters for transfer queries and streams.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferQuery {
    token: Option<String>,
    wallet: Option<String>,
    /// From this time on, in ms since the epoch.
    since: Option<u64>,
    /// Before this time, in ms since the epoch.
    until: Option<u64>,
    limit: Option<usize>,
}

impl TransferQuery {
    fn filter(&self) -> Result<(Option<TokenId>, Option<WalletAddress>), ApiError> {
        let token = self
            .token
            .as_deref()
            .map(|t| parse::<TokenId>("token", t))
            .transpose()?;
        let wallet = self
            .wallet
            .as_deref()
            .map(|w| parse::<WalletAddress>("wallet address", w))
            .transpose()?;
        Ok((token, wallet))
    }
}

async fn transfers(
    State(s): State<Arc<Shared>>,
    query: Result<Query<TransferQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let (token, wallet) = q.filter()?;
    let limit = q.limit.unwrap_or(TRANSFERS_DEFAULT);
    if !(1..=TRANSFERS_MAX).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be 1 to {TRANSFERS_MAX}"
        )));
    }
    let view = s.view();
    let from_height = match q.since {
        Some(t) => s.store.height_at(Timestamp(t))?,
        None => 1,
    };
    let to_height = match q.until {
        Some(t) => s.store.height_at(Timestamp(t))?.saturating_sub(1),
        None => view.height,
    }
    .min(view.height);
    let filter = TransferFilter {
        token,
        wallet,
        from_height,
        to_height,
    };
    let found: Vec<TransferRecord> = if from_height > to_height {
        Vec::new()
    } else {
        s.store.transfers(&filter, limit)?
    };
    at(
        &view,
        json!({"transfers": found, "from_height": from_height, "to_height": to_height}),
    )
}

fn transfer_events(
    f: &Finalized,
    token: &Option<TokenId>,
    wallet: &Option<WalletAddress>,
) -> Vec<Event> {
    f.events
        .iter()
        .filter_map(|e| match e {
            LedgerEvent::Transfer(t) => Some(t),
            _ => None,
        })
        .filter(|t| token.as_ref().is_none_or(|k| *k == t.token))
        .filter(|t| {
            wallet
                .as_ref()
                .is_none_or(|w| *w == t.to || t.from.as_ref() == Some(w))
        })
        .map(|t| {
            Event::default()
                .event("transfer")
                .json_data(json!({"transfer": t, "block_time": f.block.header.time, "state_root": f.state_root}))
                .expect("a transfer serializes")
        })
        .collect()
}

async fn events(
    State(s): State<Arc<Shared>>,
    query: Result<Query<TransferQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    if q.since.is_some() || q.until.is_some() || q.limit.is_some() {
        return Err(ApiError::bad_request(
            "the live stream takes only token and wallet; query /transfers for history",
        ));
    }
    let (token, wallet) = q.filter()?;
    let stream = BroadcastStream::new(s.events.subscribe()).flat_map(move |item| {
        let events = match item {
            Ok(f) => transfer_events(&f, &token, &wallet),
            // A slow reader missed blocks: tell it to catch up from /transfers.
            Err(tokio_stream::wrappers::errors::BroadcastStreamRecvError::Lagged(n)) => {
                vec![Event::default().event("lagged").data(n.to_string())]
            }
        };
        futures_util::stream::iter(events.into_iter().map(Ok))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
