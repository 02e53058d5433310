//! The issuer service's API: the queue for its staff, and each request's
//! standing for the TSP that filed it (by a request signed with the TSP's
//! on-chain key).

use crate::queue::{self, Decision, Kind, RequestView, State};
use crate::Issuer;
use axum::body::Bytes;
use axum::extract::{Path, Query, State as AxState};
use axum::http::{HeaderMap, Uri};
use serde::Deserialize;
use std::sync::Arc;
use tranche_service::auth::STAFF_ROLE_PREFIX;
use tranche_service::{ServiceCode, ServiceError};
use tranche_types::Role;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The whole router: the kit's routes and the issuer's, with metrics and
/// the OpenAPI document.
pub fn router(issuer: &Arc<Issuer>) -> axum::Router {
    let (router, mut doc) = issuer
        .service
        .routes()
        .merge(
            OpenApiRouter::new()
                .routes(routes!(list))
                .routes(routes!(get))
                .routes(routes!(decide))
                .routes(routes!(receive_freeze))
                .routes(routes!(propose))
                .with_state(Arc::clone(issuer)),
        )
        .split_for_parts();
    doc.info.title = "Tranche issuer service".into();
    doc.info.description = Some(
        "The issuer's approval queue: requests naming this issuer, and regulators' freeze requests, decided by its staff (four eyes), executed only once approved, checked on chain.".into(),
    );
    tranche_service::http::finish(router, issuer.service.metrics.clone(), doc)
}

/// Who may read the queue: staff, or a TSP or a regulator for the requests
/// it filed.
enum Reader {
    Staff,
    Org(String),
}

async fn reader(
    issuer: &Issuer,
    headers: &HeaderMap,
    uri: &Uri,
    body: &[u8],
) -> Result<Reader, ServiceError> {
    let s = &issuer.service;
    if headers.contains_key(axum::http::header::AUTHORIZATION) {
        let p = s.principal(headers).await?;
        if p.roles.iter().any(|r| r.starts_with(STAFF_ROLE_PREFIX)) {
            return Ok(Reader::Staff);
        }
        return Err(ServiceError::new(
            ServiceCode::Forbidden,
            "the queue is read by this organisation's staff, and by each TSP or regulator for its own requests",
        ));
    }
    if !headers.contains_key("signature-input") {
        return Err(ServiceError::new(
            ServiceCode::Unauthenticated,
            "staff log in first (POST /auth/challenge, POST /auth/session) and send Authorization: Bearer <token>; a TSP or a regulator signs its request with its on-chain key",
        ));
    }
    let caller = s.signed_caller(headers, "GET", uri.path(), body).await?;
    if !caller.roles.contains(&Role::Regulator) {
        caller.require(Role::Tsp)?;
    }
    Ok(Reader::Org(caller.org))
}

/// Which requests.
#[derive(Clone, Debug, Deserialize, utoipa::IntoParams)]
pub struct Filter {
    /// Only requests in this state (`pending`, `refused`, `executing`,
    /// `checked`, `mismatch`, `failed`, `withdrawn`).
    #[serde(default)]
    pub state: Option<String>,
}

/// The requests naming this issuer, oldest first (at most 1,000). Staff see
/// all; a TSP or a regulator (signed request) sees its own.
#[utoipa::path(get, path = "/requests", tag = "issuer", params(Filter),
    responses((status = 200, body = Vec<RequestView>), (status = 401, body = ServiceError), (status = 403, body = ServiceError)))]
async fn list(
    AxState(issuer): AxState<Arc<Issuer>>,
    headers: HeaderMap,
    uri: Uri,
    Query(filter): Query<Filter>,
) -> Result<axum::Json<Vec<RequestView>>, ServiceError> {
    let who = reader(&issuer, &headers, &uri, b"").await?;
    let state = match filter.state.as_deref() {
        None | Some("") => None,
        Some(s) => Some(State::parse(s).ok_or_else(|| {
            ServiceError::new(
                ServiceCode::BadRequest,
                format!("no state {s:?}; see GET /openapi.json"),
            )
        })?),
    };
    let tsp = match &who {
        Reader::Staff => None,
        Reader::Org(org) => Some(org.as_str()),
    };
    let mut conn = issuer.service.db.pool().acquire().await?;
    Ok(axum::Json(
        queue::list(&mut conn, state, tsp, issuer.approvals_required).await?,
    ))
}

fn not_found(kind: Kind, request: &str) -> ServiceError {
    ServiceError::new(
        ServiceCode::NotFound,
        format!(
            "no {} request {request} names this issuer (yet: it appears once its block is final)",
            kind.name()
        ),
    )
}

fn check_id(request: &str) -> Result<(), ServiceError> {
    if request.is_empty() || request.len() > 64 {
        return Err(ServiceError::new(
            ServiceCode::BadRequest,
            "a request id is 1 to 64 characters",
        ));
    }
    Ok(())
}

/// One request with its decisions.
#[utoipa::path(get, path = "/requests/{kind}/{request}", tag = "issuer",
    params(("kind" = String, Path, description = "issuance, revocation, offering, freeze or administration"), ("request" = String, Path, description = "the request's id")),
    responses((status = 200, body = RequestView), (status = 401, body = ServiceError), (status = 403, body = ServiceError), (status = 404, body = ServiceError)))]
async fn get(
    AxState(issuer): AxState<Arc<Issuer>>,
    headers: HeaderMap,
    uri: Uri,
    Path((kind, request)): Path<(String, String)>,
) -> Result<axum::Json<RequestView>, ServiceError> {
    let kind = Kind::parse(&kind)?;
    check_id(&request)?;
    let who = reader(&issuer, &headers, &uri, b"").await?;
    let mut conn = issuer.service.db.pool().acquire().await?;
    let view = queue::get(&mut conn, kind, &request, issuer.approvals_required)
        .await?
        .ok_or_else(|| not_found(kind, &request))?;
    if let Reader::Org(org) = who {
        if view.tsp != org {
            // Another organisation's request: as if it did not exist.
            return Err(not_found(kind, &request));
        }
    }
    Ok(axum::Json(view))
}

/// Approve or refuse a pending request, with a reason (staff in the role
/// `operator`). The approval that completes the quorum sends the execution.
#[utoipa::path(post, path = "/requests/{kind}/{request}/decisions", tag = "issuer", request_body = Decision,
    params(("kind" = String, Path, description = "issuance, revocation, offering, freeze or administration"), ("request" = String, Path, description = "the request's id")),
    responses((status = 200, body = RequestView), (status = 400, body = ServiceError), (status = 401, body = ServiceError),
        (status = 403, body = ServiceError), (status = 404, body = ServiceError), (status = 409, body = ServiceError)))]
async fn decide(
    AxState(issuer): AxState<Arc<Issuer>>,
    headers: HeaderMap,
    Path((kind, request)): Path<(String, String)>,
    body: Bytes,
) -> Result<axum::Json<RequestView>, ServiceError> {
    let kind = Kind::parse(&kind)?;
    check_id(&request)?;
    let who = issuer.service.principal(&headers).await?;
    let decision: Decision = serde_json::from_slice(&body).map_err(|e| {
        ServiceError::new(
            ServiceCode::BadRequest,
            format!("the body is not a decision: {e}"),
        )
    })?;
    Ok(axum::Json(
        issuer.decide(kind, &request, &who, decision).await?,
    ))
}

/// A regulator asks this issuer to freeze a wallet of one of its tokens
/// (by a request signed with the regulator's on-chain key; only
/// organisations the chain records as regulators). It is queued as a
/// `freeze` request for the staff's decisions; the same request again
/// answers where it stands.
#[utoipa::path(post, path = "/freeze-requests", tag = "issuer", request_body = tranche_api::freeze::FreezeRequest,
    responses((status = 200, body = RequestView), (status = 400, body = ServiceError), (status = 401, body = ServiceError),
        (status = 403, body = ServiceError), (status = 409, body = ServiceError), (status = 422, body = ServiceError)))]
async fn receive_freeze(
    AxState(issuer): AxState<Arc<Issuer>>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Result<axum::Json<RequestView>, ServiceError> {
    let s = &issuer.service;
    let caller = s.signed_caller(&headers, "POST", uri.path(), &body).await?;
    Ok(axum::Json(issuer.receive_freeze(&caller, &body).await?))
}

/// An operator proposes an agent action on one of this issuer's tokens
/// (`set_token_rules`, `set_rule_checks`, `set_trusted_issuers`,
/// `set_document`, `remove_document`, `approve_transfer`, `set_paused`,
/// `set_frozen`, `freeze_partial`): queued as an `administration` request
/// for the staff's decisions (four eyes), sent once approved, checked on
/// chain. The same proposal again answers where it stands.
#[utoipa::path(post, path = "/administration", tag = "issuer", request_body = crate::Proposal,
    responses((status = 200, body = RequestView), (status = 400, body = ServiceError), (status = 401, body = ServiceError),
        (status = 403, body = ServiceError), (status = 409, body = ServiceError), (status = 422, body = ServiceError)))]
async fn propose(
    AxState(issuer): AxState<Arc<Issuer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<RequestView>, ServiceError> {
    let who = issuer.service.principal(&headers).await?;
    let proposal: crate::Proposal = serde_json::from_slice(&body).map_err(|e| {
        ServiceError::new(
            ServiceCode::BadRequest,
            format!("the body is not a proposal: {e}"),
        )
    })?;
    Ok(axum::Json(issuer.propose(&who, proposal).await?))
}
