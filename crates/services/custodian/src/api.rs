//! The custodian service's API: holders open their custodial wallet and
//! register a webhook; they hand in authorizations and follow each
//! instruction to the chain, with a proof; they read and stream their
//! events. Staff read every holder, instruction and event.

use crate::holders::{self, HolderView, Webhook};
use crate::instructions::{self, InstructionView, Proof};
use crate::notices::{self, EventView, EVENTS_PAGE_MAX};
use crate::Custodian;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Deserialize;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use tranche_api::travel::TravelRuleParties;
use tranche_service::http::Json;
use tranche_service::{ServiceCode, ServiceError};
use tranche_types::Payload;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The whole router: the kit's routes and the custodian's, with metrics and
/// the OpenAPI document.
pub fn router(custodian: &Arc<Custodian>) -> axum::Router {
    let (router, mut doc) = custodian
        .service
        .routes()
        .merge(
            OpenApiRouter::new()
                .routes(routes!(open_holder))
                .routes(routes!(list_holders))
                .routes(routes!(my_holding))
                .routes(routes!(set_webhook))
                .routes(routes!(instruct))
                .routes(routes!(list_instructions))
                .routes(routes!(get_instruction))
                .routes(routes!(get_proof))
                .routes(routes!(list_events))
                .routes(routes!(stream_events))
                .routes(routes!(travel_rule))
                .with_state(Arc::clone(custodian)),
        )
        .split_for_parts();
    doc.info.title = "Tranche custodian service".into();
    doc.info.description = Some(
        "A custodian: one custodial wallet per holder, transfers out only on the holder's signed authorization within the custodian's policy, distributions claimed for holders, an audit trail with proofs, and notices of every transfer over a live stream and signed webhooks.".into(),
    );
    tranche_service::http::finish(router, custodian.service.metrics.clone(), doc)
}

/// Open your custodial wallet: hand in your consent (the
/// `open_custodial_wallet` payload `tranche did consent-custody` writes), in
/// a session with a KYC credential from an issuer the custodian trusts.
/// Again: the same wallet.
#[utoipa::path(post, path = "/holders", tag = "custodian", request_body = Object,
    responses((status = 200, body = HolderView), (status = 400, body = ServiceError), (status = 401, body = ServiceError),
        (status = 403, body = ServiceError)))]
async fn open_holder(
    State(c): State<Arc<Custodian>>,
    headers: HeaderMap,
    consent: Result<Json<Payload>, ServiceError>,
) -> Result<axum::Json<HolderView>, ServiceError> {
    // Who asks comes first: a stranger learns nothing, not even of the body.
    let who = c.service.principal(&headers).await?;
    let Json(consent) = consent?;
    Ok(axum::Json(c.open_holder(&who, consent).await?))
}

/// Every holder, oldest first (staff; at most 1,000).
#[utoipa::path(get, path = "/holders", tag = "custodian",
    responses((status = 200, body = Vec<HolderView>), (status = 401, body = ServiceError), (status = 403, body = ServiceError)))]
async fn list_holders(
    State(c): State<Arc<Custodian>>,
    headers: HeaderMap,
) -> Result<axum::Json<Vec<HolderView>>, ServiceError> {
    let who = c.service.principal(&headers).await?;
    if !crate::is_staff(&who) {
        return Err(ServiceError::new(
            ServiceCode::Forbidden,
            format!(
                "the holders are listed for staff in the roles {:?}",
                crate::READERS
            ),
        ));
    }
    let mut conn = c.service.db.pool().acquire().await?;
    Ok(axum::Json(holders::holders(&mut conn).await?))
}

/// Your custodial wallet: its address (deposit by sending tokens to it),
/// state, balances on chain, the number your next authorization carries,
/// and your webhook.
#[utoipa::path(get, path = "/holders/me", tag = "custodian",
    responses((status = 200, body = HolderView), (status = 401, body = ServiceError), (status = 404, body = ServiceError)))]
async fn my_holding(
    State(c): State<Arc<Custodian>>,
    headers: HeaderMap,
) -> Result<axum::Json<HolderView>, ServiceError> {
    let who = c.service.principal(&headers).await?;
    Ok(axum::Json(c.holder_with_balances(&who.did).await?))
}

/// Where your notices are pushed: each delivery is a JSON array of events,
/// signed by the custodian (`x-tranche-signature`: its key's ed25519
/// signature, hex, over the body in the `notice` domain); an empty URL
/// stops them.
#[utoipa::path(put, path = "/holders/me/webhook", tag = "custodian", request_body = Webhook,
    responses((status = 200, body = HolderView), (status = 400, body = ServiceError), (status = 401, body = ServiceError), (status = 404, body = ServiceError)))]
async fn set_webhook(
    State(c): State<Arc<Custodian>>,
    headers: HeaderMap,
    hook: Result<Json<Webhook>, ServiceError>,
) -> Result<axum::Json<HolderView>, ServiceError> {
    let who = c.service.principal(&headers).await?;
    let Json(hook) = hook?;
    Ok(axum::Json(c.set_webhook(&who, hook).await?))
}

/// Hand in an authorization (the `custodial_transfer` payload `tranche did
/// authorize-transfer` writes): checked against the custodian's policy,
/// then sent in the custodian's transaction; a refusal is `422 refused`
/// with its reason, and on the record. The same authorization again: the
/// same instruction.
#[utoipa::path(post, path = "/instructions", tag = "custodian", request_body = Object,
    responses((status = 200, body = InstructionView), (status = 400, body = ServiceError), (status = 401, body = ServiceError),
        (status = 403, body = ServiceError), (status = 404, body = ServiceError), (status = 409, body = ServiceError),
        (status = 422, body = ServiceError)))]
async fn instruct(
    State(c): State<Arc<Custodian>>,
    headers: HeaderMap,
    body: Result<Json<serde_json::Value>, ServiceError>,
) -> Result<axum::Json<InstructionView>, ServiceError> {
    let who = c.service.principal(&headers).await?;
    let Json(body) = body?;
    // Either the authorization alone, or `{"authorization", "travel_rule"}`
    // as `tranche did authorize-transfer --travel-rule` writes them.
    let bad = |what: &str, e: serde_json::Error| {
        ServiceError::new(ServiceCode::BadRequest, format!("{what}: {e}"))
    };
    let (authorization, parties) = match body {
        serde_json::Value::Object(mut o) if o.contains_key("travel_rule") => {
            let parties = o
                .remove("travel_rule")
                .map(serde_json::from_value::<TravelRuleParties>)
                .transpose()
                .map_err(|e| {
                    bad(
                        "travel_rule is who sends, who receives and the receiving organisation",
                        e,
                    )
                })?;
            let authorization =
                serde_json::from_value(o.remove("authorization").unwrap_or_default())
                    .map_err(|e| bad("authorization is the custodial_transfer payload", e))?;
            (authorization, parties)
        }
        other => (
            serde_json::from_value(other).map_err(|e| {
                bad(
                    "the body is your authorization, the custodial_transfer payload",
                    e,
                )
            })?,
            None,
        ),
    };
    Ok(axum::Json(c.instruct(&who, authorization, parties).await?))
}

/// A travel-rule message this custodian sent, by its digest, sealed to the
/// asking regulator's key (organisations the chain records as regulators,
/// by signed request).
#[utoipa::path(get, path = "/travel-rule/{digest}", tag = "custodian",
    params(("digest" = String, Path, description = "The message's digest: the transfer's reference on chain")),
    responses((status = 200, body = tranche_api::travel::SealedTravelRule), (status = 401, body = ServiceError),
        (status = 403, body = ServiceError), (status = 404, body = ServiceError)))]
async fn travel_rule(
    State(c): State<Arc<Custodian>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Path(digest): Path<String>,
) -> Result<axum::Json<tranche_api::travel::SealedTravelRule>, ServiceError> {
    let s = &c.service;
    let caller = s.signed_caller(&headers, "GET", uri.path(), b"").await?;
    Ok(axum::Json(s.travel_rule_for(&caller, &digest).await?))
}

/// Your instructions, newest first (staff: everyone's; at most 1,000).
#[utoipa::path(get, path = "/instructions", tag = "custodian",
    responses((status = 200, body = Vec<InstructionView>), (status = 401, body = ServiceError)))]
async fn list_instructions(
    State(c): State<Arc<Custodian>>,
    headers: HeaderMap,
) -> Result<axum::Json<Vec<InstructionView>>, ServiceError> {
    let who = c.service.principal(&headers).await?;
    let did = (!crate::is_staff(&who)).then_some(who.did.as_str());
    let mut conn = c.service.db.pool().acquire().await?;
    Ok(axum::Json(
        instructions::instructions(&mut conn, did).await?,
    ))
}

fn check_id(id: &str) -> Result<(), ServiceError> {
    if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(ServiceError::new(
            ServiceCode::BadRequest,
            "an instruction id is 64 hex digits",
        ))
    }
}

/// One instruction and where it stands (its holder or staff).
#[utoipa::path(get, path = "/instructions/{id}", tag = "custodian",
    params(("id" = String, Path, description = "the instruction's id")),
    responses((status = 200, body = InstructionView), (status = 400, body = ServiceError), (status = 401, body = ServiceError), (status = 404, body = ServiceError)))]
async fn get_instruction(
    State(c): State<Arc<Custodian>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<axum::Json<InstructionView>, ServiceError> {
    check_id(&id)?;
    let who = c.service.principal(&headers).await?;
    let mut conn = c.service.db.pool().acquire().await?;
    let v = instructions::instruction(&mut conn, &id.to_lowercase())
        .await?
        .ok_or_else(|| instructions::not_found(&id))?;
    Ok(axum::Json(instructions::visible(&who, v)?))
}

/// Where the chain has a final instruction's transaction: its block's
/// height and hash, its position, the state root after it; check it
/// against any node with `tranche verify inclusion`.
#[utoipa::path(get, path = "/instructions/{id}/proof", tag = "custodian",
    params(("id" = String, Path, description = "the instruction's id")),
    responses((status = 200, body = Proof), (status = 400, body = ServiceError), (status = 401, body = ServiceError),
        (status = 404, body = ServiceError), (status = 409, body = ServiceError)))]
async fn get_proof(
    State(c): State<Arc<Custodian>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<axum::Json<Proof>, ServiceError> {
    check_id(&id)?;
    let who = c.service.principal(&headers).await?;
    Ok(axum::Json(c.proof(&who, &id.to_lowercase()).await?))
}

/// From where to read events.
#[derive(Clone, Debug, Deserialize, utoipa::IntoParams)]
pub struct EventsQuery {
    /// Events after this `seq` (0: from the first).
    #[serde(default)]
    pub after: u64,
    /// At most this many (default and maximum 1,000).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// Your events after a cursor, oldest first (staff: everyone's).
#[utoipa::path(get, path = "/events", tag = "custodian", params(EventsQuery),
    responses((status = 200, body = Vec<EventView>), (status = 401, body = ServiceError)))]
async fn list_events(
    State(c): State<Arc<Custodian>>,
    headers: HeaderMap,
    Query(q): Query<EventsQuery>,
) -> Result<axum::Json<Vec<EventView>>, ServiceError> {
    let who = c.service.principal(&headers).await?;
    let did = (!crate::is_staff(&who)).then_some(who.did.as_str());
    let mut conn = c.service.db.pool().acquire().await?;
    let limit = q.limit.unwrap_or(EVENTS_PAGE_MAX);
    Ok(axum::Json(
        notices::events_after(&mut conn, did, q.after, limit).await?,
    ))
}

/// Your events as they happen (server-sent events, `event: transfer`, the
/// id being the event's `seq`): from `after`, or from the `Last-Event-ID` a
/// reconnecting client sends (staff: everyone's).
#[utoipa::path(get, path = "/events/stream", tag = "custodian", params(EventsQuery),
    responses((status = 200, description = "text/event-stream of EventView", content_type = "text/event-stream"),
        (status = 401, body = ServiceError)))]
async fn stream_events(
    State(c): State<Arc<Custodian>>,
    headers: HeaderMap,
    Query(q): Query<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ServiceError> {
    let who = c.service.principal(&headers).await?;
    let did = (!crate::is_staff(&who)).then(|| who.did.clone());
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let start = resume.unwrap_or(q.after);
    // Subscribed before the first read: events committed from here on wake
    // the stream even while it reads.
    let woken = c.events.subscribe();
    let state = (c, did, start, VecDeque::<EventView>::new(), woken);
    let stream = futures_util::stream::unfold(
        state,
        |(c, did, mut cursor, mut queue, mut woken)| async move {
            loop {
                if let Some(e) = queue.pop_front() {
                    let data = serde_json::to_string(&e).unwrap_or_default();
                    let event = Event::default()
                        .event("transfer")
                        .id(e.seq.to_string())
                        .data(data);
                    return Some((Ok(event), (c, did, cursor, queue, woken)));
                }
                let found = match c.service.db.pool().acquire().await {
                    Ok(mut conn) => notices::events_after(&mut conn, did.as_deref(), cursor, 100)
                        .await
                        .unwrap_or_default(),
                    Err(_) => Vec::new(),
                };
                match found.last() {
                    Some(last) => {
                        cursor = last.seq;
                        queue.extend(found);
                    }
                    None => notices::wait_for_events(&mut woken).await,
                }
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
