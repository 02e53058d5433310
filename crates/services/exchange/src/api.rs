//! The exchange service's API: traders open an account and bind its
//! wallet; operators credit and debit accounts; everyone with a session
//! reads the markets; traders place, amend and cancel orders and read
//! their orders and trades; staff read everyone's.

use crate::keys::{ApiKeyView, NewApiKey};
use crate::market::{BookView, ListingView};
use crate::orders::{AmendRequest, OrderRequest};
use crate::records::{self, OrderView, TradeView, PAGE_MAX};
use crate::traders::{AccountView, Movement, TraderView, WalletConsent};
use crate::Exchange;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Uri};
use serde::Deserialize;
use std::sync::Arc;
use tranche_matching::InstrumentId;
use tranche_service::http::Json;
use tranche_service::{ServiceCode, ServiceError};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The whole router: the kit's routes and the exchange's, with metrics and
/// the OpenAPI document.
pub fn router(exchange: &Arc<Exchange>) -> axum::Router {
    let (router, mut doc) = exchange
        .service
        .routes()
        .merge(
            OpenApiRouter::new()
                .routes(routes!(open_trader, list_traders))
                .routes(routes!(me))
                .routes(routes!(bind_wallet))
                .routes(routes!(credit))
                .routes(routes!(debit))
                .routes(routes!(markets))
                .routes(routes!(book))
                .routes(routes!(place, list_orders))
                .routes(routes!(get_order, cancel, amend))
                .routes(routes!(list_trades))
                .routes(routes!(list_reports, close_report))
                .routes(routes!(websocket))
                .routes(routes!(add_key, list_keys))
                .routes(routes!(revoke_key))
                .routes(routes!(receive_travel_rule))
                .routes(routes!(travel_rule))
                .with_state(Arc::clone(exchange)),
        )
        .split_for_parts();
    doc.info.title = "Tranche exchange service".into();
    doc.info.description = Some(
        "An exchange: traders with wallets bound to their DIDs, listings from the chain, orders checked and reserved before the matching engine and journaled before they are acknowledged, the trade ledger, and settlement on chain as delivery versus payment.".into(),
    );
    tranche_service::http::finish(router, exchange.service.metrics.clone(), doc)
}

/// A JSON body, bounded by the router's body limit.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ServiceError> {
    serde_json::from_slice(body).map_err(|e| {
        ServiceError::new(
            ServiceCode::BadRequest,
            format!("the body does not read: {e}"),
        )
    })
}

fn forbidden_unless_staff(who: &tranche_service::auth::Principal) -> Result<(), ServiceError> {
    if crate::is_staff(who) {
        Ok(())
    } else {
        Err(ServiceError::new(
            ServiceCode::Forbidden,
            format!("this is for staff in the roles {:?}", crate::READERS),
        ))
    }
}

/// Become a trader (F6-3): in a session with KYC and jurisdiction
/// credentials from issuers the exchange trusts. You are given a wallet on
/// chain (F6-11); bind it to your DID with `PUT /traders/me/wallet`.
/// Again: the same.
#[utoipa::path(post, path = "/traders", tag = "exchange",
    responses((status = 200, body = TraderView), (status = 401, body = ServiceError), (status = 403, body = ServiceError)))]
async fn open_trader(
    State(x): State<Arc<Exchange>>,
    headers: HeaderMap,
) -> Result<axum::Json<TraderView>, ServiceError> {
    let who = x.service.principal(&headers).await?;
    Ok(axum::Json(x.open_trader(&who).await?))
}

/// Every trader, oldest first (staff; at most 1,000).
#[utoipa::path(get, path = "/traders", tag = "exchange",
    responses((status = 200, body = Vec<TraderView>), (status = 401, body = ServiceError), (status = 403, body = ServiceError)))]
async fn list_traders(
    State(x): State<Arc<Exchange>>,
    headers: HeaderMap,
) -> Result<axum::Json<Vec<TraderView>>, ServiceError> {
    let who = x.service.principal(&headers).await?;
    forbidden_unless_staff(&who)?;
    Ok(axum::Json(x.traders().await?))
}

/// You as a trader: your wallet, its state, and your balances (on chain
/// and at the exchange), what is held and what is free.
#[utoipa::path(get, path = "/traders/me", tag = "exchange",
    responses((status = 200, body = TraderView), (status = 401, body = ServiceError), (status = 404, body = ServiceError)))]
async fn me(
    State(x): State<Arc<Exchange>>,
    headers: HeaderMap,
) -> Result<axum::Json<TraderView>, ServiceError> {
    let who = x.who(&headers, "GET", "/traders/me", b"").await?;
    Ok(axum::Json(x.trader(&who.did).await?))
}

/// Bind your wallet to your DID: your consent, as `tranche did
/// consent-wallet --wallet <your wallet>` writes it. The exchange adds the
/// wallet key's signature and sends the binding.
#[utoipa::path(put, path = "/traders/me/wallet", tag = "exchange", request_body = WalletConsent,
    responses((status = 200, body = TraderView), (status = 400, body = ServiceError), (status = 401, body = ServiceError),
        (status = 403, body = ServiceError), (status = 404, body = ServiceError)))]
async fn bind_wallet(
    State(x): State<Arc<Exchange>>,
    headers: HeaderMap,
    consent: Result<Json<WalletConsent>, ServiceError>,
) -> Result<axum::Json<TraderView>, ServiceError> {
    let who = x.service.principal(&headers).await?;
    let Json(consent) = consent?;
    Ok(axum::Json(x.bind_wallet(&who, consent).await?))
}

/// Credit a trader's account (operators): money or crypto that reached the
/// exchange for them. Once per reference.
#[utoipa::path(post, path = "/accounts/credits", tag = "exchange", request_body = Movement,
    responses((status = 200, body = AccountView), (status = 400, body = ServiceError), (status = 401, body = ServiceError),
        (status = 403, body = ServiceError), (status = 404, body = ServiceError), (status = 409, body = ServiceError)))]
async fn credit(
    State(x): State<Arc<Exchange>>,
    headers: HeaderMap,
    mv: Result<Json<Movement>, ServiceError>,
) -> Result<axum::Json<AccountView>, ServiceError> {
    let who = x.service.principal(&headers).await?;
    let Json(mv) = mv?;
    Ok(axum::Json(x.move_cash(&who, true, mv).await?))
}

/// Debit a trader's account (operators): a withdrawal paid out. Only what
/// open orders and unsettled trades do not hold; once per reference.
#[utoipa::path(post, path = "/accounts/debits", tag = "exchange", request_body = Movement,
    responses((status = 200, body = AccountView), (status = 400, body = ServiceError), (status = 401, body = ServiceError),
        (status = 403, body = ServiceError), (status = 404, body = ServiceError), (status = 409, body = ServiceError),
        (status = 422, body = ServiceError)))]
async fn debit(
    State(x): State<Arc<Exchange>>,
    headers: HeaderMap,
    mv: Result<Json<Movement>, ServiceError>,
) -> Result<axum::Json<AccountView>, ServiceError> {
    let who = x.service.principal(&headers).await?;
    let Json(mv) = mv?;
    Ok(axum::Json(x.move_cash(&who, false, mv).await?))
}

/// The listed tokens (F6-2): their state, the on-chain event that last
/// changed it, and their instruments.
#[utoipa::path(get, path = "/markets", tag = "exchange",
    responses((status = 200, body = Vec<ListingView>), (status = 401, body = ServiceError)))]
async fn markets(
    State(x): State<Arc<Exchange>>,
    headers: HeaderMap,
) -> Result<axum::Json<Vec<ListingView>>, ServiceError> {
    x.service.principal(&headers).await?;
    Ok(axum::Json(x.market().listings.values().cloned().collect()))
}

/// How deep a book to show.
#[derive(Clone, Debug, Deserialize, utoipa::IntoParams)]
pub struct DepthQuery {
    /// Price levels a side (default 10, at most 100).
    #[serde(default)]
    pub depth: Option<u32>,
}

/// An instrument's book: best bids and asks by level, and the last trade.
#[utoipa::path(get, path = "/markets/{base}/{quote}", tag = "exchange", params(
        ("base" = String, Path, description = "the security token"),
        ("quote" = String, Path, description = "the currency or token it is priced in"), DepthQuery),
    responses((status = 200, body = BookView), (status = 401, body = ServiceError), (status = 404, body = ServiceError)))]
async fn book(
    State(x): State<Arc<Exchange>>,
    headers: HeaderMap,
    Path((base, quote)): Path<(String, String)>,
    Query(q): Query<DepthQuery>,
) -> Result<axum::Json<BookView>, ServiceError> {
    x.service.principal(&headers).await?;
    let id = InstrumentId::new(&format!("{base}/{quote}"))
        .map_err(|e| ServiceError::new(ServiceCode::BadRequest, e.to_string()))?;
    let depth = q.depth.unwrap_or(10).clamp(1, 100) as usize;
    x.market()
        .book(&id, depth)
        .map(axum::Json)
        .ok_or_else(|| ServiceError::new(ServiceCode::NotFound, format!("{id} is not listed")))
}

/// Place an order: limit (with a price) or market (without), `gtc`,
/// `ioc`, `fok` or `post_only`. It is checked (your free balance, the
/// exchange's limits, the token's rules for your side on chain), matched,
/// and journaled before this answers; each trade settles on chain. A
/// refusal is `422 refused` with a stable code: `insufficient_funds`,
/// `insufficient_tokens`, `not_eligible`, `over_order_limit`,
/// `over_value_limit`, or the engine's (`halted`, `delisted`,
/// `post_only_would_cross`, `fill_or_kill_unfillable`, …) in the order's
/// `reason`.
#[utoipa::path(post, path = "/orders", tag = "exchange", request_body = OrderRequest,
    responses((status = 200, body = OrderView), (status = 400, body = ServiceError), (status = 401, body = ServiceError),
        (status = 404, body = ServiceError), (status = 409, body = ServiceError), (status = 422, body = ServiceError)))]
async fn place(
    State(x): State<Arc<Exchange>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<OrderView>, ServiceError> {
    let who = x.who(&headers, "POST", "/orders", &body).await?;
    let r: OrderRequest = parse(&body)?;
    Ok(axum::Json(x.place(&who.did, r).await?))
}

/// Which orders to list.
#[derive(Clone, Debug, Deserialize, utoipa::IntoParams)]
pub struct OrdersQuery {
    /// Only those still on a book.
    #[serde(default)]
    pub open: bool,
    /// At most this many (default and maximum 1,000).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// Your orders, newest first (staff: everyone's).
#[utoipa::path(get, path = "/orders", tag = "exchange", params(OrdersQuery),
    responses((status = 200, body = Vec<OrderView>), (status = 401, body = ServiceError)))]
async fn list_orders(
    State(x): State<Arc<Exchange>>,
    headers: HeaderMap,
    Query(q): Query<OrdersQuery>,
) -> Result<axum::Json<Vec<OrderView>>, ServiceError> {
    let who = x.who(&headers, "GET", "/orders", b"").await?;
    let did = (!who.staff).then_some(who.did.as_str());
    let mut conn = x.service.db.pool().acquire().await?;
    Ok(axum::Json(
        records::orders(&mut conn, did, q.open, q.limit.unwrap_or(PAGE_MAX)).await?,
    ))
}

/// One of your orders (staff: anyone's).
#[utoipa::path(get, path = "/orders/{id}", tag = "exchange",
    params(("id" = u64, Path, description = "the order's id")),
    responses((status = 200, body = OrderView), (status = 401, body = ServiceError), (status = 404, body = ServiceError)))]
async fn get_order(
    State(x): State<Arc<Exchange>>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<u64>,
) -> Result<axum::Json<OrderView>, ServiceError> {
    let who = x.who(&headers, "GET", uri.path(), b"").await?;
    let did = (!who.staff).then_some(who.did.as_str());
    let mut conn = x.service.db.pool().acquire().await?;
    Ok(axum::Json(records::order(&mut conn, did, id).await?))
}

/// Cancel your order (accepted while its book is halted, too).
#[utoipa::path(delete, path = "/orders/{id}", tag = "exchange",
    params(("id" = u64, Path, description = "the order's id")),
    responses((status = 200, body = OrderView), (status = 401, body = ServiceError), (status = 404, body = ServiceError),
        (status = 422, body = ServiceError)))]
async fn cancel(
    State(x): State<Arc<Exchange>>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<u64>,
) -> Result<axum::Json<OrderView>, ServiceError> {
    let who = x.who(&headers, "DELETE", uri.path(), b"").await?;
    Ok(axum::Json(x.cancel(&who.did, id).await?))
}

/// Amend your resting order's open quantity or price: a smaller quantity
/// keeps its place in the queue; an amend never trades.
#[utoipa::path(patch, path = "/orders/{id}", tag = "exchange", request_body = AmendRequest,
    params(("id" = u64, Path, description = "the order's id")),
    responses((status = 200, body = OrderView), (status = 400, body = ServiceError), (status = 401, body = ServiceError),
        (status = 404, body = ServiceError), (status = 422, body = ServiceError)))]
async fn amend(
    State(x): State<Arc<Exchange>>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<u64>,
    body: Bytes,
) -> Result<axum::Json<OrderView>, ServiceError> {
    let who = x.who(&headers, "PATCH", uri.path(), &body).await?;
    let a: AmendRequest = parse(&body)?;
    Ok(axum::Json(x.amend(&who.did, id, a).await?))
}

/// How many trades to list.
#[derive(Clone, Debug, Deserialize, utoipa::IntoParams)]
pub struct TradesQuery {
    /// Trades after this id, oldest first (to read the whole ledger page
    /// by page); without it, the newest first.
    #[serde(default)]
    pub after: Option<u64>,
    /// At most this many (default and maximum 1,000).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// Your trades, newest first (staff: the whole trade ledger, F6-5): each
/// with its settlement transaction and state.
#[utoipa::path(get, path = "/trades", tag = "exchange", params(TradesQuery),
    responses((status = 200, body = Vec<TradeView>), (status = 401, body = ServiceError)))]
async fn list_trades(
    State(x): State<Arc<Exchange>>,
    headers: HeaderMap,
    Query(q): Query<TradesQuery>,
) -> Result<axum::Json<Vec<TradeView>>, ServiceError> {
    let who = x.who(&headers, "GET", "/trades", b"").await?;
    let did = (!who.staff).then_some(who.did.as_str());
    let mut conn = x.service.db.pool().acquire().await?;
    Ok(axum::Json(
        records::trades(&mut conn, did, q.after, q.limit.unwrap_or(PAGE_MAX)).await?,
    ))
}

/// From where to read reports.
#[derive(Clone, Debug, Deserialize, utoipa::IntoParams)]
pub struct ReportsQuery {
    /// Reports after this number (0: from the first).
    #[serde(default)]
    pub after: u64,
    /// At most this many (default and maximum 100).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// The exchange's reports (F6-6, F6-8), oldest first: for an organisation
/// the chain records as a regulator, by a request signed with its key; or
/// for the exchange's staff. Check them with `tranche verify reports.json`.
#[utoipa::path(get, path = "/reports", tag = "exchange", params(ReportsQuery),
    responses((status = 200, body = Vec<tranche_api::report::SignedReport>), (status = 401, body = ServiceError),
        (status = 403, body = ServiceError)))]
async fn list_reports(
    State(x): State<Arc<Exchange>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Query(q): Query<ReportsQuery>,
) -> Result<axum::Json<Vec<tranche_api::report::SignedReport>>, ServiceError> {
    let s = &x.service;
    if headers.contains_key("signature-input") {
        let caller = s.signed_caller(&headers, "GET", uri.path(), b"").await?;
        caller.require(tranche_types::Role::Regulator)?;
    } else {
        forbidden_unless_staff(&s.principal(&headers).await?)?;
    }
    Ok(axum::Json(
        x.reports(q.after, q.limit.unwrap_or(crate::reports::REPORTS_PAGE_MAX))
            .await?,
    ))
}

/// Close the period now (operators): the next report, of every trade the
/// chain decided that no report holds yet.
#[utoipa::path(post, path = "/reports", tag = "exchange",
    responses((status = 200, body = tranche_api::report::SignedReport), (status = 401, body = ServiceError),
        (status = 403, body = ServiceError)))]
async fn close_report(
    State(x): State<Arc<Exchange>>,
    headers: HeaderMap,
) -> Result<axum::Json<tranche_api::report::SignedReport>, ServiceError> {
    x.service
        .principal(&headers)
        .await?
        .require(crate::OPERATOR)?;
    Ok(axum::Json(x.close_report().await?))
}

/// Where a browser, which cannot set headers on a WebSocket, puts its
/// session.
#[derive(Clone, Debug, Deserialize, utoipa::IntoParams)]
pub struct WsQuery {
    /// The session's bearer token, if not in the `Authorization` header.
    #[serde(default)]
    pub token: Option<String>,
}

/// A WebSocket for orders and market data, in a session. Send
/// `{"op":"subscribe","instrument":"ACME/USD"}` for the book (best bid and
/// offer and 10 levels a side) and trades as they happen,
/// `{"op":"place","order":{…as POST /orders…}}`, `{"op":"cancel","order":N}`
/// or `{"op":"amend","order":N,"quantity":Q,"price":P}`; each answer and
/// every change to your orders comes as `{"type":"order", …the order…}`
/// (books as `{"type":"book", …}`, trades as `{"type":"trade", …}`),
/// refusals as `{"type":"error","code","message"}`, and `{"type":"lagged"}`
/// if the connection fell too far behind (read the book again).
#[utoipa::path(get, path = "/ws", tag = "exchange", params(WsQuery),
    responses((status = 101, description = "switching to the WebSocket"), (status = 401, body = ServiceError)))]
async fn websocket(
    State(x): State<Arc<Exchange>>,
    headers: HeaderMap,
    Query(q): Query<WsQuery>,
    upgrade: axum::extract::ws::WebSocketUpgrade,
) -> Result<axum::response::Response, ServiceError> {
    let s = &x.service;
    let who = match &q.token {
        Some(token) => {
            s.auth
                .session(&s.db, token, tranche_service::now_ms())
                .await?
        }
        None => s.principal(&headers).await?,
    };
    Ok(upgrade
        .max_message_size(crate::ws::MESSAGE_BYTES_MAX)
        .on_upgrade(move |socket| x.serve_ws(socket, who.did)))
}

/// Register an API key (in a session): an ed25519 public key your programs
/// sign requests to the order endpoints with (`Signature-Input` with
/// `keyid` the key in hex, as `tranche service call … --sign-as <key>
/// --key <name>` makes), instead of a session; at most 5 in use.
#[utoipa::path(post, path = "/traders/me/keys", tag = "exchange", request_body = NewApiKey,
    responses((status = 200, body = ApiKeyView), (status = 400, body = ServiceError), (status = 401, body = ServiceError),
        (status = 404, body = ServiceError), (status = 409, body = ServiceError)))]
async fn add_key(
    State(x): State<Arc<Exchange>>,
    headers: HeaderMap,
    k: Result<Json<NewApiKey>, ServiceError>,
) -> Result<axum::Json<ApiKeyView>, ServiceError> {
    let who = x.service.principal(&headers).await?;
    let Json(k) = k?;
    Ok(axum::Json(x.add_key(&who, k).await?))
}

/// Your API keys, revoked ones too.
#[utoipa::path(get, path = "/traders/me/keys", tag = "exchange",
    responses((status = 200, body = Vec<ApiKeyView>), (status = 401, body = ServiceError)))]
async fn list_keys(
    State(x): State<Arc<Exchange>>,
    headers: HeaderMap,
) -> Result<axum::Json<Vec<ApiKeyView>>, ServiceError> {
    let who = x.service.principal(&headers).await?;
    Ok(axum::Json(x.keys(&who.did).await?))
}

/// Revoke one of your API keys (in a session): requests it signs are
/// refused from now on.
#[utoipa::path(delete, path = "/traders/me/keys/{key}", tag = "exchange",
    params(("key" = String, Path, description = "the key, hex")),
    responses((status = 200, body = ApiKeyView), (status = 401, body = ServiceError), (status = 404, body = ServiceError)))]
async fn revoke_key(
    State(x): State<Arc<Exchange>>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Result<axum::Json<ApiKeyView>, ServiceError> {
    let who = x.service.principal(&headers).await?;
    Ok(axum::Json(x.revoke_key(&who, &key).await?))
}

/// A travel-rule message for a transfer to one of this exchange's traders
/// (custodians and exchanges, by a request signed with their on-chain
/// key): sealed to this exchange's key, naming the sender and this
/// exchange, its digest the transfer's reference on chain. Kept in the
/// vault; the same message again, the same answer.
#[utoipa::path(post, path = "/travel-rule", tag = "exchange", request_body = tranche_api::travel::SealedTravelRule,
    responses((status = 200, body = crate::TravelRuleReceipt), (status = 400, body = ServiceError), (status = 401, body = ServiceError),
        (status = 403, body = ServiceError), (status = 422, body = ServiceError)))]
async fn receive_travel_rule(
    State(x): State<Arc<Exchange>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: axum::body::Bytes,
) -> Result<axum::Json<crate::TravelRuleReceipt>, ServiceError> {
    let caller = x
        .service
        .signed_caller(&headers, "POST", uri.path(), &body)
        .await?;
    Ok(axum::Json(x.receive_travel_rule(&caller, &body).await?))
}

/// A travel-rule message this exchange received, by its digest, sealed to
/// the asking regulator's key (organisations the chain records as
/// regulators, by signed request).
#[utoipa::path(get, path = "/travel-rule/{digest}", tag = "exchange",
    params(("digest" = String, Path, description = "The message's digest: the transfer's reference on chain")),
    responses((status = 200, body = tranche_api::travel::SealedTravelRule), (status = 401, body = ServiceError),
        (status = 403, body = ServiceError), (status = 404, body = ServiceError)))]
async fn travel_rule(
    State(x): State<Arc<Exchange>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Path(digest): Path<String>,
) -> Result<axum::Json<tranche_api::travel::SealedTravelRule>, ServiceError> {
    let s = &x.service;
    let caller = s.signed_caller(&headers, "GET", uri.path(), b"").await?;
    Ok(axum::Json(s.travel_rule_for(&caller, &digest).await?))
}
