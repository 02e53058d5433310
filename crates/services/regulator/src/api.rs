//! The regulator service's API: exchanges POST their reports by signed
//! request; its staff publish the policy, link identities, and read
//! reports, reconciliations, findings and alerts.

use crate::freeze::{FreezeOrder, FreezeView};
use crate::intake::Receipt;
use crate::policy::{PolicyRequest, Published};
use crate::reconcile::{AlertView, FindingView, ReconciliationView, ReportView};
use crate::travel::{TravelCheckRequest, TravelCheckView};
use crate::Regulator;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Uri};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tranche_api::report_binary::REPORT_MEDIA_TYPE;
use tranche_service::audit::{self, Entry};
use tranche_service::http::Json;
use tranche_service::{now_ms, ServiceCode, ServiceError};
use tranche_types::Did;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The largest report an exchange may POST: an exchange's report of
/// 10,000 trades and their transfers fits.
pub const REPORT_BYTES_MAX: usize = 32 * 1024 * 1024;

/// The whole router: the kit's routes and the regulator's, with metrics and
/// the OpenAPI document.
pub fn router(regulator: &Arc<Regulator>) -> axum::Router {
    let (router, mut doc) = regulator
        .service
        .routes()
        .merge(
            OpenApiRouter::new()
                .routes(routes!(receive_report, list_reports))
                .layer(axum::extract::DefaultBodyLimit::max(REPORT_BYTES_MAX))
                .with_state(Arc::clone(regulator)),
        )
        .merge(
            OpenApiRouter::new()
                .routes(routes!(list_reconciliations))
                .routes(routes!(export_reconciliation))
                .routes(routes!(list_findings))
                .routes(routes!(list_alerts))
                .routes(routes!(request_freeze))
                .routes(routes!(list_freezes))
                .routes(routes!(check_travel_rule, list_travel_checks))
                .routes(routes!(add_link))
                .routes(routes!(publish_policy))
                .with_state(Arc::clone(regulator)),
        )
        .split_for_parts();
    doc.info.title = "Tranche regulator service".into();
    doc.info.description = Some(
        "An AML regulator: its policy on chain, exchanges' signed reports in, reconciled against the chain, and monitoring rules over them, every finding and alert on its audit log.".into(),
    );
    tranche_service::http::finish(router, regulator.service.metrics.clone(), doc)
}

/// Which exchange.
#[derive(Clone, Debug, Deserialize, utoipa::IntoParams)]
pub struct ExchangeQuery {
    /// One exchange's only.
    #[serde(default)]
    pub exchange: Option<String>,
}

/// Report an exchange's period (F6-6, F6-8): the body is the exchange's
/// signed report, the request signed by the exchange's on-chain key
/// (RFC 9421, as every organisation signs). Only organisations the chain
/// records as exchanges report, each for itself.
#[utoipa::path(post, path = "/reports", tag = "regulator",
    request_body(content(
        (tranche_api::report::SignedReport = "application/json"),
        (Vec<u8> = "application/vnd.tranche.report")),
        description = "The signed report: its JSON, or its binary form (see `tranche_api::report_binary`), which is hashed and kept as it comes"),
    responses((status = 200, body = Receipt), (status = 400, body = ServiceError), (status = 401, body = ServiceError),
        (status = 403, body = ServiceError), (status = 409, body = ServiceError), (status = 422, body = ServiceError)))]
async fn receive_report(
    State(r): State<Arc<Regulator>>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Result<axum::Json<Receipt>, ServiceError> {
    let s = &r.service;
    let (caller, nonce) = s
        .signed_caller_unclaimed(&headers, "POST", uri.path(), &body)
        .await?;
    let binary = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|t| t.to_str().ok())
        .and_then(|t| t.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case(REPORT_MEDIA_TYPE));
    Ok(axum::Json(r.receive(&caller, nonce, binary, &body).await?))
}

/// The reports received, newest first (staff).
#[utoipa::path(get, path = "/reports", tag = "regulator", params(ExchangeQuery),
    responses((status = 200, body = Vec<ReportView>), (status = 401, body = ServiceError), (status = 403, body = ServiceError)))]
async fn list_reports(
    State(r): State<Arc<Regulator>>,
    headers: HeaderMap,
    Query(q): Query<ExchangeQuery>,
) -> Result<axum::Json<Vec<ReportView>>, ServiceError> {
    Regulator::require_reader(&r.service.principal(&headers).await?)?;
    Ok(axum::Json(r.reports(q.exchange.as_deref()).await?))
}

/// Each report's reconciliation against the chain (F6-9), newest first
/// (staff): `verdict` is `clean` when nothing was found.
#[utoipa::path(get, path = "/reconciliations", tag = "regulator", params(ExchangeQuery),
    responses((status = 200, body = Vec<ReconciliationView>), (status = 401, body = ServiceError), (status = 403, body = ServiceError)))]
async fn list_reconciliations(
    State(r): State<Arc<Regulator>>,
    headers: HeaderMap,
    Query(q): Query<ExchangeQuery>,
) -> Result<axum::Json<Vec<ReconciliationView>>, ServiceError> {
    Regulator::require_reader(&r.service.principal(&headers).await?)?;
    Ok(axum::Json(r.reconciliations(q.exchange.as_deref()).await?))
}

/// One report's reconciliation, signed by the regulator for anyone with a
/// node to check with `tranche verify FILE --node URL` (staff, REC-9).
#[utoipa::path(get, path = "/reconciliations/{exchange}/{seq}/export", tag = "regulator",
    params(("exchange" = String, Path, description = "The exchange"), ("seq" = u64, Path, description = "The report's number")),
    responses((status = 200, body = tranche_api::report::SignedReconciliation), (status = 401, body = ServiceError),
        (status = 403, body = ServiceError), (status = 404, body = ServiceError)))]
async fn export_reconciliation(
    State(r): State<Arc<Regulator>>,
    headers: HeaderMap,
    Path((exchange, seq)): Path<(String, u64)>,
) -> Result<axum::Json<tranche_api::report::SignedReconciliation>, ServiceError> {
    let who = r.service.principal(&headers).await?;
    Regulator::require_reader(&who)?;
    let export = r.export(&exchange, seq).await?;
    let role = Regulator::reader_role(&who);
    let mut w = r.service.db.write().await?;
    audit::append(
        &mut w.tx,
        now_ms(),
        Entry::by_person(
            &who,
            role,
            "export",
            format!("report/{exchange}/{seq}"),
            format!("reconciliation exported, hash {}", export.hash),
        ),
    )
    .await?;
    w.commit().await?;
    Ok(axum::Json(export))
}

/// Findings with their evidence (staff).
#[utoipa::path(get, path = "/findings", tag = "regulator", params(ExchangeQuery),
    responses((status = 200, body = Vec<FindingView>), (status = 401, body = ServiceError), (status = 403, body = ServiceError)))]
async fn list_findings(
    State(r): State<Arc<Regulator>>,
    headers: HeaderMap,
    Query(q): Query<ExchangeQuery>,
) -> Result<axum::Json<Vec<FindingView>>, ServiceError> {
    Regulator::require_reader(&r.service.principal(&headers).await?)?;
    Ok(axum::Json(r.findings(q.exchange.as_deref()).await?))
}

/// The monitoring rules' alerts with their evidence (staff).
#[utoipa::path(get, path = "/alerts", tag = "regulator", params(ExchangeQuery),
    responses((status = 200, body = Vec<AlertView>), (status = 401, body = ServiceError), (status = 403, body = ServiceError)))]
async fn list_alerts(
    State(r): State<Arc<Regulator>>,
    headers: HeaderMap,
    Query(q): Query<ExchangeQuery>,
) -> Result<axum::Json<Vec<AlertView>>, ServiceError> {
    Regulator::require_reader(&r.service.principal(&headers).await?)?;
    Ok(axum::Json(r.alerts(q.exchange.as_deref()).await?))
}

/// `POST /links`: two identities the regulator knows to be one party.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// One DID.
    #[schema(value_type = String)]
    pub a: Did,
    /// The other.
    #[schema(value_type = String)]
    pub b: Did,
    /// Why, for the record (never personal data), at most 256 bytes.
    pub reason: String,
}

/// Link two identities (operators): a trade between them is a wash trade.
#[utoipa::path(post, path = "/links", tag = "regulator", request_body = Link,
    responses((status = 200, body = Link), (status = 400, body = ServiceError), (status = 401, body = ServiceError),
        (status = 403, body = ServiceError)))]
async fn add_link(
    State(r): State<Arc<Regulator>>,
    headers: HeaderMap,
    link: Result<Json<Link>, ServiceError>,
) -> Result<axum::Json<Link>, ServiceError> {
    let who = r.service.principal(&headers).await?;
    who.require(crate::OPERATOR)?;
    let Json(link) = link?;
    if link.a == link.b {
        return Err(ServiceError::new(
            ServiceCode::BadRequest,
            "a link joins two different DIDs",
        ));
    }
    if link.reason.is_empty()
        || link.reason.len() > 256
        || link.reason.chars().any(char::is_control)
    {
        return Err(ServiceError::new(
            ServiceCode::BadRequest,
            "reason is 1 to 256 bytes of printable text",
        ));
    }
    let (a, b) = if link.a <= link.b {
        (link.a.to_string(), link.b.to_string())
    } else {
        (link.b.to_string(), link.a.to_string())
    };
    let mut w = r.service.db.write().await?;
    sqlx::query(
        "INSERT INTO rg_links (a, b, reason, at_ms) VALUES ($1, $2, $3, $4)
         ON CONFLICT (a, b) DO UPDATE SET reason = excluded.reason",
    )
    .bind(a.clone())
    .bind(b.clone())
    .bind(link.reason.clone())
    .bind(now_ms() as i64)
    .execute(&mut *w.tx)
    .await?;
    audit::append(
        &mut w.tx,
        now_ms(),
        Entry::by_person(
            &who,
            crate::OPERATOR,
            "link",
            format!("link/{a}/{b}"),
            format!("linked: {}", link.reason),
        ),
    )
    .await?;
    w.commit().await?;
    Ok(axum::Json(link))
}

/// Publish the next version of the AML policy (operators, F6-1): it
/// governs from `effective_height`, `policy_delay_blocks` from now unless
/// given. `GET /aml-policy` on a node shows every version.
#[utoipa::path(post, path = "/policy", tag = "regulator", request_body = PolicyRequest,
    responses((status = 200, body = Published), (status = 400, body = ServiceError), (status = 401, body = ServiceError),
        (status = 403, body = ServiceError), (status = 409, body = ServiceError)))]
async fn publish_policy(
    State(r): State<Arc<Regulator>>,
    headers: HeaderMap,
    req: Result<Json<PolicyRequest>, ServiceError>,
) -> Result<axum::Json<Published>, ServiceError> {
    let who = r.service.principal(&headers).await?;
    let Json(req) = req?;
    Ok(axum::Json(r.publish(Some(&who), req).await?))
}

/// Ask the issuer of a token the alert concerns to freeze a wallet of an
/// identity in it (operators). The request goes to the issuer's service,
/// signed, and waits there for its staff; `GET /freezes` shows when the
/// chain froze the wallet. While a request for the same wallet and token
/// is open, that request is the answer.
#[utoipa::path(post, path = "/alerts/{id}/freeze", tag = "regulator", request_body = FreezeOrder,
    params(("id" = u64, Path, description = "The alert")),
    responses((status = 200, body = FreezeView), (status = 400, body = ServiceError), (status = 401, body = ServiceError),
        (status = 403, body = ServiceError), (status = 404, body = ServiceError), (status = 409, body = ServiceError)))]
async fn request_freeze(
    State(r): State<Arc<Regulator>>,
    headers: HeaderMap,
    Path(id): Path<u64>,
    order: Result<Json<FreezeOrder>, ServiceError>,
) -> Result<axum::Json<FreezeView>, ServiceError> {
    let who = r.service.principal(&headers).await?;
    let Json(order) = order?;
    Ok(axum::Json(r.request_freeze(&who, id, order).await?))
}

/// Freeze requests and where each stands, oldest first (staff).
#[utoipa::path(get, path = "/freezes", tag = "regulator",
    responses((status = 200, body = Vec<FreezeView>), (status = 401, body = ServiceError), (status = 403, body = ServiceError)))]
async fn list_freezes(
    State(r): State<Arc<Regulator>>,
    headers: HeaderMap,
) -> Result<axum::Json<Vec<FreezeView>>, ServiceError> {
    Regulator::require_reader(&r.service.principal(&headers).await?)?;
    Ok(axum::Json(r.freezes().await?))
}

/// Check a transfer's travel rule (staff): the regulator asks the sending
/// and the receiving organisation for the message its reference names,
/// each sealed to the regulator's key, and checks each against the chain.
#[utoipa::path(post, path = "/travel-rule/checks", tag = "regulator", request_body = TravelCheckRequest,
    responses((status = 200, body = TravelCheckView), (status = 400, body = ServiceError), (status = 401, body = ServiceError),
        (status = 403, body = ServiceError), (status = 404, body = ServiceError)))]
async fn check_travel_rule(
    State(r): State<Arc<Regulator>>,
    headers: HeaderMap,
    req: Result<Json<TravelCheckRequest>, ServiceError>,
) -> Result<axum::Json<TravelCheckView>, ServiceError> {
    let who = r.service.principal(&headers).await?;
    let Json(req) = req?;
    Ok(axum::Json(r.check_travel_rule(&who, req).await?))
}

/// The travel-rule checks made, newest first (staff).
#[utoipa::path(get, path = "/travel-rule/checks", tag = "regulator",
    responses((status = 200, body = Vec<TravelCheckView>), (status = 401, body = ServiceError), (status = 403, body = ServiceError)))]
async fn list_travel_checks(
    State(r): State<Arc<Regulator>>,
    headers: HeaderMap,
) -> Result<axum::Json<Vec<TravelCheckView>>, ServiceError> {
    Regulator::require_reader(&r.service.principal(&headers).await?)?;
    Ok(axum::Json(r.travel_checks().await?))
}
