//! The bank service's API: customers open an account and read their
//! statement; operators credit deposits and mark payouts paid; staff read
//! accounts, payouts and the offerings escrowed here.

use crate::accounts::{
    self, AccountView, DepositView, NewAccount, NewDeposit, Paid, PayoutView, Statement,
};
use crate::escrow::{self, OfferingState};
use crate::Bank;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use std::sync::Arc;
use tranche_service::auth::Principal;
use tranche_service::http::Json;
use tranche_service::{ServiceCode, ServiceError};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The whole router: the kit's routes and the bank's, with metrics and the
/// OpenAPI document.
pub fn router(bank: &Arc<Bank>) -> axum::Router {
    let (router, mut doc) = bank
        .service
        .routes()
        .merge(
            OpenApiRouter::new()
                .routes(routes!(open_account))
                .routes(routes!(list_accounts))
                .routes(routes!(my_statement))
                .routes(routes!(statement))
                .routes(routes!(deposit))
                .routes(routes!(list_payouts))
                .routes(routes!(mark_paid))
                .routes(routes!(list_offerings))
                .with_state(Arc::clone(bank)),
        )
        .split_for_parts();
    doc.info.title = "Tranche escrow bank service".into();
    doc.info.description = Some(
        "An escrow bank: accounts by DID, deposit tokens minted 1:1 with money credited by its operators (standing for its core banking system) and redeemed for payouts, offerings' escrow closed and released as the ledger permits, statements.".into(),
    );
    tranche_service::http::finish(router, bank.service.metrics.clone(), doc)
}

async fn staff(bank: &Bank, headers: &HeaderMap) -> Result<Principal, ServiceError> {
    let p = bank.service.principal(headers).await?;
    if crate::READERS
        .iter()
        .any(|r| p.roles.iter().any(|x| x == r))
    {
        Ok(p)
    } else {
        Err(ServiceError::new(
            ServiceCode::Forbidden,
            format!(
                "this is read by the bank's staff in the roles {:?}",
                crate::READERS
            ),
        ))
    }
}

/// Open your account for a wallet bound to your DID (a session with a KYC
/// credential from an issuer the bank trusts). Again for the same wallet:
/// the same account.
#[utoipa::path(post, path = "/accounts", tag = "bank", request_body = NewAccount,
    responses((status = 200, body = AccountView), (status = 400, body = ServiceError), (status = 401, body = ServiceError),
        (status = 403, body = ServiceError), (status = 409, body = ServiceError)))]
async fn open_account(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    Json(new): Json<NewAccount>,
) -> Result<axum::Json<AccountView>, ServiceError> {
    let who = bank.service.principal(&headers).await?;
    Ok(axum::Json(bank.open_account(&who, new).await?))
}

/// Every account, oldest first (staff; at most 1,000).
#[utoipa::path(get, path = "/accounts", tag = "bank",
    responses((status = 200, body = Vec<AccountView>), (status = 401, body = ServiceError), (status = 403, body = ServiceError)))]
async fn list_accounts(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
) -> Result<axum::Json<Vec<AccountView>>, ServiceError> {
    staff(&bank, &headers).await?;
    let mut conn = bank.service.db.pool().acquire().await?;
    Ok(axum::Json(accounts::accounts(&mut conn).await?))
}

/// Your account's statement: balance on chain, deposits, payouts, and the
/// deposit token's movements in your wallet.
#[utoipa::path(get, path = "/accounts/me", tag = "bank",
    responses((status = 200, body = Statement), (status = 401, body = ServiceError), (status = 404, body = ServiceError)))]
async fn my_statement(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
) -> Result<axum::Json<Statement>, ServiceError> {
    let who = bank.service.principal(&headers).await?;
    Ok(axum::Json(bank.statement(&who.did).await?))
}

/// A customer's statement (staff).
#[utoipa::path(get, path = "/accounts/{did}", tag = "bank",
    params(("did" = String, Path, description = "the customer's DID")),
    responses((status = 200, body = Statement), (status = 401, body = ServiceError), (status = 403, body = ServiceError), (status = 404, body = ServiceError)))]
async fn statement(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    Path(did): Path<String>,
) -> Result<axum::Json<Statement>, ServiceError> {
    staff(&bank, &headers).await?;
    if did.is_empty() || did.len() > 256 {
        return Err(ServiceError::new(
            ServiceCode::BadRequest,
            "a DID is 1 to 256 characters",
        ));
    }
    Ok(axum::Json(bank.statement(&did).await?))
}

/// Credit money that arrived for a customer (an operator): mints as many
/// deposit tokens to their wallet. The same reference again: the same
/// deposit.
#[utoipa::path(post, path = "/deposits", tag = "bank", request_body = NewDeposit,
    responses((status = 200, body = DepositView), (status = 400, body = ServiceError), (status = 401, body = ServiceError),
        (status = 403, body = ServiceError), (status = 404, body = ServiceError), (status = 409, body = ServiceError)))]
async fn deposit(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    Json(new): Json<NewDeposit>,
) -> Result<axum::Json<DepositView>, ServiceError> {
    let who = bank.service.principal(&headers).await?;
    Ok(axum::Json(bank.deposit(&who, new).await?))
}

/// Which payouts.
#[derive(Clone, Debug, Deserialize, utoipa::IntoParams)]
pub struct PayoutFilter {
    /// Only `owed` or only `paid`.
    #[serde(default)]
    pub state: Option<String>,
}

/// Money owed or paid for redeemed deposit tokens, oldest first (staff).
#[utoipa::path(get, path = "/payouts", tag = "bank", params(PayoutFilter),
    responses((status = 200, body = Vec<PayoutView>), (status = 400, body = ServiceError), (status = 401, body = ServiceError), (status = 403, body = ServiceError)))]
async fn list_payouts(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    Query(filter): Query<PayoutFilter>,
) -> Result<axum::Json<Vec<PayoutView>>, ServiceError> {
    staff(&bank, &headers).await?;
    let state = match filter.state.as_deref() {
        None | Some("") => None,
        Some(s @ ("owed" | "paid")) => Some(s),
        Some(s) => {
            return Err(ServiceError::new(
                ServiceCode::BadRequest,
                format!("a payout is owed or paid, not {s:?}"),
            ))
        }
    };
    let mut conn = bank.service.db.pool().acquire().await?;
    Ok(axum::Json(accounts::payouts(&mut conn, state).await?))
}

/// Mark a payout paid once the money went out (an operator).
#[utoipa::path(post, path = "/payouts/{tx}/paid", tag = "bank", request_body = Paid,
    params(("tx" = String, Path, description = "the redeeming transaction's hash")),
    responses((status = 200, body = PayoutView), (status = 400, body = ServiceError), (status = 401, body = ServiceError),
        (status = 403, body = ServiceError), (status = 404, body = ServiceError), (status = 409, body = ServiceError)))]
async fn mark_paid(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    Path(tx): Path<String>,
    Json(paid): Json<Paid>,
) -> Result<axum::Json<PayoutView>, ServiceError> {
    if tx.len() != 64 || !tx.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ServiceError::new(
            ServiceCode::BadRequest,
            "a transaction hash is 64 hex digits",
        ));
    }
    let who = bank.service.principal(&headers).await?;
    Ok(axum::Json(
        bank.mark_paid(&who, &tx.to_lowercase(), paid).await?,
    ))
}

/// The offerings escrowed with this bank and where each stands (staff).
#[utoipa::path(get, path = "/offerings", tag = "bank",
    responses((status = 200, body = Vec<OfferingState>), (status = 401, body = ServiceError), (status = 403, body = ServiceError)))]
async fn list_offerings(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
) -> Result<axum::Json<Vec<OfferingState>>, ServiceError> {
    staff(&bank, &headers).await?;
    let mut conn = bank.service.db.pool().acquire().await?;
    Ok(axum::Json(escrow::offerings(&mut conn).await?))
}
