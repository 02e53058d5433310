//! The TSP service's API: owners register assets; investors have wallets
//! bound; operators open offerings; anyone logged in reads an offering's
//! standing; staff read the assets.

use crate::assets::{refuse, AssetView, NewAsset};
use crate::corporate::{ActionView, NewDistribution, NewRedemption};
use crate::offerings::{NewOffering, OfferingStatus};
use crate::subscriptions::SubscriptionView;
use crate::Tsp;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use std::sync::Arc;
use tranche_service::http::Json;
use tranche_service::{ServiceCode, ServiceError};
use tranche_types::{Payload, SignedTransaction};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The whole router: the kit's routes and the TSP's, with metrics and the
/// OpenAPI document.
pub fn router(tsp: &Arc<Tsp>) -> axum::Router {
    let (router, mut doc) = tsp
        .service
        .routes()
        .merge(
            OpenApiRouter::new()
                .routes(routes!(register_asset))
                .routes(routes!(get_asset))
                .routes(routes!(bind_wallet))
                .routes(routes!(open_offering))
                .routes(routes!(get_offering))
                .routes(routes!(subscribe))
                .routes(routes!(get_subscription))
                .routes(routes!(distribute))
                .routes(routes!(reclaim))
                .routes(routes!(redeem))
                .routes(routes!(get_action))
                .with_state(Arc::clone(tsp)),
        )
        .split_for_parts();
    doc.info.title = "Tranche TSP service".into();
    doc.info.description = Some(
        "A tokenization service provider: assets registered for the owner a trusted registry attested, offerings opened only on an appraisal within the network's policy, investors' wallets bound after their presentation, issuances verified on chain.".into(),
    );
    tranche_service::http::finish(router, tsp.service.metrics.clone(), doc)
}

fn check_id(id: &str) -> Result<(), ServiceError> {
    if id.is_empty() || id.len() > 64 {
        return Err(refuse(
            ServiceCode::BadRequest,
            "an id is 1 to 64 characters",
        ));
    }
    Ok(())
}

/// Register your asset (a session with an ownership credential from a
/// trusted asset registry, which also goes in the body).
#[utoipa::path(post, path = "/assets", tag = "tsp", request_body = NewAsset,
    responses((status = 200, body = AssetView), (status = 400, body = ServiceError), (status = 401, body = ServiceError),
        (status = 403, body = ServiceError), (status = 409, body = ServiceError)))]
async fn register_asset(
    State(tsp): State<Arc<Tsp>>,
    headers: HeaderMap,
    Json(new): Json<NewAsset>,
) -> Result<axum::Json<AssetView>, ServiceError> {
    let who = tsp.service.principal(&headers).await?;
    Ok(axum::Json(tsp.register_asset(&who, new).await?))
}

/// An asset's standing: registration, the appraisal and whether it is
/// within the network's tolerance (its owner, or staff).
#[utoipa::path(get, path = "/assets/{asset}", tag = "tsp",
    params(("asset" = String, Path, description = "the asset's id")),
    responses((status = 200, body = AssetView), (status = 401, body = ServiceError), (status = 404, body = ServiceError)))]
async fn get_asset(
    State(tsp): State<Arc<Tsp>>,
    headers: HeaderMap,
    Path(asset): Path<String>,
) -> Result<axum::Json<AssetView>, ServiceError> {
    check_id(&asset)?;
    let who = tsp.service.principal(&headers).await?;
    let staff = crate::READERS
        .iter()
        .any(|r| who.roles.iter().any(|x| x == r));
    let mut conn = tsp.service.db.pool().acquire().await?;
    match tsp.asset(&mut conn, &asset).await? {
        Some(v) if staff || v.owner == who.did => Ok(axum::Json(v)),
        // Another owner's asset: as if it did not exist.
        _ => Err(refuse(
            ServiceCode::NotFound,
            format!("no asset {asset} of yours is registered here"),
        )),
    }
}

/// Have your wallet bound to your DID: the body is the `register_wallet`
/// payload `tranche did bind-wallet` wrote (a session with KYC and
/// jurisdiction credentials).
#[utoipa::path(post, path = "/wallets", tag = "tsp", request_body(content = Object, description = "a register_wallet payload"),
    responses((status = 200, description = "The binding and its transaction"), (status = 400, body = ServiceError),
        (status = 401, body = ServiceError), (status = 403, body = ServiceError), (status = 409, body = ServiceError)))]
async fn bind_wallet(
    State(tsp): State<Arc<Tsp>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<serde_json::Value>, ServiceError> {
    let who = tsp.service.principal(&headers).await?;
    let payload: Payload = serde_json::from_slice(&body).map_err(|e| {
        refuse(
            ServiceCode::BadRequest,
            format!("the body is not a register_wallet payload: {e}"),
        )
    })?;
    Ok(axum::Json(tsp.bind_wallet(&who, payload).await?))
}

/// Open an offering for an asset appraised within the network's policy
/// (staff `operator`); the same id again answers the same offering.
#[utoipa::path(post, path = "/offerings", tag = "tsp", request_body = NewOffering,
    responses((status = 200, body = OfferingStatus), (status = 400, body = ServiceError), (status = 401, body = ServiceError),
        (status = 403, body = ServiceError), (status = 404, body = ServiceError), (status = 409, body = ServiceError)))]
async fn open_offering(
    State(tsp): State<Arc<Tsp>>,
    headers: HeaderMap,
    Json(new): Json<NewOffering>,
) -> Result<axum::Json<OfferingStatus>, ServiceError> {
    let who = tsp.service.principal(&headers).await?;
    Ok(axum::Json(tsp.open_offering(&who, new).await?))
}

/// An offering's standing: the TSP's (with its verification of the
/// issuance) and the chain's (any session).
#[utoipa::path(get, path = "/offerings/{offering}", tag = "tsp",
    params(("offering" = String, Path, description = "the offering's id")),
    responses((status = 200, body = OfferingStatus), (status = 401, body = ServiceError), (status = 404, body = ServiceError)))]
async fn get_offering(
    State(tsp): State<Arc<Tsp>>,
    headers: HeaderMap,
    Path(offering): Path<String>,
) -> Result<axum::Json<OfferingStatus>, ServiceError> {
    check_id(&offering)?;
    tsp.service.principal(&headers).await?;
    let mut conn = tsp.service.db.pool().acquire().await?;
    tsp.offering(&mut conn, &offering)
        .await?
        .map(axum::Json)
        .ok_or_else(|| {
            refuse(
                ServiceCode::NotFound,
                format!("no offering {offering} was opened here"),
            )
        })
}

/// Subscribe: hand in the `subscribe` transaction you signed offline with
/// the key of a wallet bound to your DID (any session); the TSP checks and
/// records it and sends it to its node. Handing in the same one again
/// answers the same subscription.
#[utoipa::path(post, path = "/subscriptions", tag = "tsp",
    request_body(content = Object, description = "a signed subscribe transaction, as tranche tx sign writes it"),
    responses((status = 202, body = SubscriptionView), (status = 400, body = ServiceError), (status = 401, body = ServiceError),
        (status = 403, body = ServiceError), (status = 404, body = ServiceError), (status = 409, body = ServiceError),
        (status = 503, body = ServiceError)))]
async fn subscribe(
    State(tsp): State<Arc<Tsp>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(axum::http::StatusCode, axum::Json<SubscriptionView>), ServiceError> {
    let who = tsp.service.principal(&headers).await?;
    let stx: SignedTransaction = serde_json::from_slice(&body).map_err(|e| {
        refuse(
            ServiceCode::BadRequest,
            format!("the body is not a signed transaction: {e}"),
        )
    })?;
    let view = tsp.subscribe(&who, stx).await?;
    Ok((axum::http::StatusCode::ACCEPTED, axum::Json(view)))
}

/// A subscription relayed here: sent, applied or rejected (the investor
/// who handed it in, or staff).
#[utoipa::path(get, path = "/subscriptions/{tx}", tag = "tsp",
    params(("tx" = String, Path, description = "the transaction's id")),
    responses((status = 200, body = SubscriptionView), (status = 400, body = ServiceError), (status = 401, body = ServiceError), (status = 404, body = ServiceError)))]
async fn get_subscription(
    State(tsp): State<Arc<Tsp>>,
    headers: HeaderMap,
    Path(tx): Path<String>,
) -> Result<axum::Json<SubscriptionView>, ServiceError> {
    if tx.len() != 64 || !tx.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(refuse(
            ServiceCode::BadRequest,
            "a transaction id is 64 hex digits",
        ));
    }
    let who = tsp.service.principal(&headers).await?;
    let mut conn = tsp.service.db.pool().acquire().await?;
    Ok(axum::Json(
        tsp.subscription(&mut conn, &who, &tx.to_ascii_lowercase())
            .await?,
    ))
}

/// Declare a profit distribution over a checkpoint taken now and fund it
/// from the TSP's wallet in a deposit token (staff `operator`, F5-9):
/// holders at the checkpoint claim their share.
#[utoipa::path(post, path = "/distributions", tag = "tsp", request_body = NewDistribution,
    responses((status = 200, body = ActionView), (status = 400, body = ServiceError), (status = 401, body = ServiceError),
        (status = 403, body = ServiceError), (status = 404, body = ServiceError), (status = 409, body = ServiceError)))]
async fn distribute(
    State(tsp): State<Arc<Tsp>>,
    headers: HeaderMap,
    Json(new): Json<NewDistribution>,
) -> Result<axum::Json<ActionView>, ServiceError> {
    let who = tsp.service.principal(&headers).await?;
    Ok(axum::Json(tsp.distribute(&who, new).await?))
}

/// Take back what holders did not claim of a distribution, after its
/// deadline (staff `operator`).
#[utoipa::path(post, path = "/distributions/{distribution}/reclaim", tag = "tsp",
    params(("distribution" = String, Path, description = "the distribution's id")),
    responses((status = 200, body = ActionView), (status = 401, body = ServiceError), (status = 403, body = ServiceError),
        (status = 404, body = ServiceError), (status = 409, body = ServiceError)))]
async fn reclaim(
    State(tsp): State<Arc<Tsp>>,
    headers: HeaderMap,
    Path(distribution): Path<String>,
) -> Result<axum::Json<ActionView>, ServiceError> {
    check_id(&distribution)?;
    let who = tsp.service.principal(&headers).await?;
    Ok(axum::Json(tsp.reclaim(&who, &distribution).await?))
}

/// Redeem a token when its asset is sold (staff `operator`, F5-10): a
/// revocation request carrying the sale proceeds per unit, paid from the
/// TSP's wallet to each holder as the issuer revokes; the TSP verifies the
/// revocation (SR-1).
#[utoipa::path(post, path = "/redemptions", tag = "tsp", request_body = NewRedemption,
    responses((status = 200, body = ActionView), (status = 400, body = ServiceError), (status = 401, body = ServiceError),
        (status = 403, body = ServiceError), (status = 404, body = ServiceError), (status = 409, body = ServiceError)))]
async fn redeem(
    State(tsp): State<Arc<Tsp>>,
    headers: HeaderMap,
    Json(new): Json<NewRedemption>,
) -> Result<axum::Json<ActionView>, ServiceError> {
    let who = tsp.service.principal(&headers).await?;
    Ok(axum::Json(tsp.redeem(&who, new).await?))
}

/// A distribution or a redemption as the TSP follows it (any session).
#[utoipa::path(get, path = "/actions/{kind}/{id}", tag = "tsp",
    params(("kind" = String, Path, description = "distribution or redemption"), ("id" = String, Path, description = "its id")),
    responses((status = 200, body = ActionView), (status = 400, body = ServiceError), (status = 401, body = ServiceError), (status = 404, body = ServiceError)))]
async fn get_action(
    State(tsp): State<Arc<Tsp>>,
    headers: HeaderMap,
    Path((kind, id)): Path<(String, String)>,
) -> Result<axum::Json<ActionView>, ServiceError> {
    check_id(&id)?;
    if !matches!(kind.as_str(), "distribution" | "redemption") {
        return Err(refuse(
            ServiceCode::BadRequest,
            "the kind is distribution or redemption",
        ));
    }
    tsp.service.principal(&headers).await?;
    let mut conn = tsp.service.db.pool().acquire().await?;
    tsp.action(&mut conn, &kind, &id)
        .await?
        .map(axum::Json)
        .ok_or_else(|| refuse(ServiceCode::NotFound, format!("no {kind} {id} here")))
}
