//! The ledger's side of the API: organisations, wallets, tokens, assets and
//! the requests a TSP checks, each read from the last finalized state.

use super::chain::validator_view;
use super::{at, parse, Answer, ApiError, Shared};
use axum::extract::{Path, Query, State};
use std::sync::Arc;
use tranche_api::node::{
    AssetView, At, AuditAnchorView, Balance, CustodialWallet, CustodyView, IssuanceRequestView,
    IssuanceView, LockedUnits, OfferingView, OrganisationView, OwnershipView,
    RevocationRequestView, RevocationView, SubscriptionView, TokenKindView, TokenRecord, TokenView,
    TransferCheck, WalletView,
};
use tranche_api::ErrorBody;
use tranche_ledger::{BlockContext, Ledger, Token, TokenKind};
use tranche_types::{AssetId, OrgId, RequestId, TokenId, Units, WalletAddress};

/// An admitted organisation: its key, roles and validator bond.
#[utoipa::path(get, path = "/organisations/{org}", tag = "ledger",
    params(("org" = String, Path, description = "The organisation's id")),
    responses(
        (status = 200, description = "The organisation", body = At<OrganisationView>),
        (status = 404, description = "No such organisation", body = ErrorBody)))]
pub(super) async fn organisation(
    State(s): State<Arc<Shared>>,
    Path(org): Path<String>,
) -> Answer<At<OrganisationView>> {
    let org: OrgId = parse("organisation", &org)?;
    let view = s.view();
    let answer = organisation_view(&view.ledger, org)?;
    at(&view, answer)
}

/// The organisation that signs with a key: how a service that sees a
/// transaction's signer learns who sent it and in which roles.
#[utoipa::path(get, path = "/keys/{key}/organisation", tag = "ledger",
    params(("key" = String, Path, description = "An ed25519 public key, hex")),
    responses(
        (status = 200, description = "The organisation", body = At<OrganisationView>),
        (status = 404, description = "No organisation signs with this key", body = ErrorBody)))]
pub(super) async fn organisation_of_key(
    State(s): State<Arc<Shared>>,
    Path(key): Path<String>,
) -> Answer<At<OrganisationView>> {
    let key: tranche_types::PublicKey = parse("public key", &key)?;
    let view = s.view();
    let org = view
        .ledger
        .organisation_of_key(&key)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("no organisation signs with key {key}")))?;
    let answer = organisation_view(&view.ledger, org)?;
    at(&view, answer)
}

fn organisation_view(ledger: &Ledger, org: OrgId) -> Result<OrganisationView, ApiError> {
    let o = ledger
        .organisation(&org)
        .ok_or_else(|| ApiError::not_found(format!("no organisation {org}")))?;
    let elected = ledger.next_committee();
    let validator = ledger
        .validator(&org)
        .map(|v| validator_view(&org, v, elected.iter().any(|m| m.org == org)));
    let audit_anchor = ledger.audit_anchor(&org).map(|a| AuditAnchorView {
        entries: a.entries,
        head: a.head,
        height: a.height,
    });
    Ok(OrganisationView {
        key: o.key,
        roles: o.roles.list(),
        governor: o.governor,
        validator,
        audit_anchor,
        org,
    })
}

/// A wallet: its DID, custody, balances, freezes and the custodial wallets
/// kept for the same identity.
#[utoipa::path(get, path = "/wallets/{address}", tag = "ledger",
    params(("address" = String, Path, description = "The wallet address (tr1...)")),
    responses(
        (status = 200, description = "The wallet", body = At<WalletView>),
        (status = 400, description = "Not a wallet address", body = ErrorBody)))]
pub(super) async fn wallet(
    State(s): State<Arc<Shared>>,
    Path(address): Path<String>,
) -> Answer<At<WalletView>> {
    let address: WalletAddress = parse("wallet address", &address)?;
    let view = s.view();
    let ledger = &view.ledger;
    let balances = ledger
        .balances_of(&address)
        .map(|(token, units)| Balance {
            locked: ledger
                .lockup(token, &address)
                .filter(|l| view.time.date() < l.until)
                .map(|l| LockedUnits {
                    units: l.units,
                    until: l.until,
                }),
            token: token.clone(),
            units,
        })
        .collect();
    let frozen_tokens = ledger.frozen_tokens_of(&address).cloned().collect();
    let did = ledger.identity(&address).cloned();
    // The custodial wallets kept for this wallet's identity (SR-3).
    let custodial_wallets = did
        .as_ref()
        .map(|did| {
            ledger
                .custodial_wallets_of(did)
                .filter(|(w, _)| *w != address)
                .map(|(wallet, c)| CustodialWallet {
                    wallet,
                    custodian: c.custodian.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    let answer = WalletView {
        address,
        did,
        custody: ledger.custody(&address).map(|c| CustodyView {
            custodian: c.custodian.clone(),
            holder: c.holder.clone(),
            next_authorization: c.next_authorization,
        }),
        balances,
        frozen_tokens,
        custodial_wallets,
    };
    at(&view, answer)
}

pub(super) fn token_record(t: &Token) -> TokenRecord {
    TokenRecord {
        kind: match t.kind {
            TokenKind::Security => TokenKindView::Security,
            TokenKind::Cash => TokenKindView::Cash,
        },
        issuer: t.issuer.clone(),
        tsp: t.tsp.clone(),
        asset: t.asset.clone(),
        request: t.request.clone(),
        unit_price: t.unit_price.clone(),
        currency: t.currency.clone(),
        issue_date: t.issue_date,
        expiry_date: t.expiry_date,
        issued: t.issued,
        revoked: t.revoked,
        paused: t.paused,
        rules: t.rules.clone(),
        holders: t.holders,
        checkpoints: t.checkpoints,
        rules_version: t.rules_version,
        rules_since: t.rules_since,
        rules_suspended: t.rules_suspended,
        holder_identities: t.holder_identities,
    }
}

/// A token, its supply (what an exchange checks, SR-2) and its revocation wallet.
#[utoipa::path(get, path = "/tokens/{token}", tag = "ledger",
    params(("token" = String, Path, description = "The token's id")),
    responses(
        (status = 200, description = "The token", body = At<TokenView>),
        (status = 404, description = "No such token", body = ErrorBody)))]
pub(super) async fn token(
    State(s): State<Arc<Shared>>,
    Path(token): Path<String>,
) -> Answer<At<TokenView>> {
    let token: TokenId = parse("token", &token)?;
    let view = s.view();
    let t = view
        .ledger
        .token(&token)
        .ok_or_else(|| ApiError::not_found(format!("no token {token}")))?;
    let answer = TokenView {
        token: token_record(t),
        supply: view.ledger.supply(&token),
        revocation_wallet: Ledger::revocation_wallet(&token),
    };
    at(&view, answer)
}

/// A registered asset and its latest appraisal (F5-1, SR-6).
/// Who an asset registry the network trusts attested as an asset's owner
/// (ST-6), with the digest of the ownership credential it issued.
#[utoipa::path(get, path = "/ownerships/{asset}", tag = "ledger",
    params(("asset" = String, Path, description = "The asset's id")),
    responses(
        (status = 200, description = "The attested owner", body = At<OwnershipView>),
        (status = 404, description = "No registry attested an owner", body = ErrorBody)))]
pub(super) async fn ownership(
    State(s): State<Arc<Shared>>,
    Path(asset): Path<String>,
) -> Answer<At<OwnershipView>> {
    let asset: AssetId = parse("asset", &asset)?;
    let view = s.view();
    let o = view
        .ledger
        .ownership(&asset)
        .ok_or_else(|| ApiError::not_found(format!("no registry attested an owner of {asset}")))?;
    let answer = OwnershipView {
        owner: o.owner.clone(),
        registry: o.registry.clone(),
        credential: o.credential,
    };
    at(&view, answer)
}

#[utoipa::path(get, path = "/assets/{asset}", tag = "ledger",
    params(("asset" = String, Path, description = "The asset's id")),
    responses(
        (status = 200, description = "The asset", body = At<AssetView>),
        (status = 404, description = "No such asset", body = ErrorBody)))]
pub(super) async fn asset(
    State(s): State<Arc<Shared>>,
    Path(asset): Path<String>,
) -> Answer<At<AssetView>> {
    let asset: AssetId = parse("asset", &asset)?;
    let view = s.view();
    let a = view
        .ledger
        .asset(&asset)
        .ok_or_else(|| ApiError::not_found(format!("no asset {asset}")))?;
    let answer = AssetView {
        tsp: a.tsp.clone(),
        owner: a.owner.clone(),
        kind: a.kind,
        description: a.description,
        price: a.price.clone(),
        appraiser: a.appraiser.clone(),
        appraisal: a.appraisal.clone(),
    };
    at(&view, answer)
}

/// An issuance request and its check: requested against issued (SR-1).
#[utoipa::path(get, path = "/issuances/{request}", tag = "ledger",
    params(("request" = String, Path, description = "The request's id")),
    responses(
        (status = 200, description = "The request and its check", body = At<IssuanceView>),
        (status = 404, description = "No such request", body = ErrorBody)))]
pub(super) async fn issuance(
    State(s): State<Arc<Shared>>,
    Path(request): Path<String>,
) -> Answer<At<IssuanceView>> {
    let request: RequestId = parse("request", &request)?;
    let view = s.view();
    let r = view
        .ledger
        .issuance(&request)
        .ok_or_else(|| ApiError::not_found(format!("no issuance request {request}")))?;
    let answer = IssuanceView {
        request: IssuanceRequestView {
            tsp: r.tsp.clone(),
            terms: r.terms.clone(),
            issued: r.issued,
            withdrawn: r.withdrawn,
        },
        check: view.ledger.issuance_check(&request),
    };
    at(&view, answer)
}

/// Which of an offering's subscriptions to list.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub(super) struct SubscriptionPage {
    /// From the subscription numbered this (0: the first).
    #[serde(default)]
    after: u64,
    /// At most this many (default and most: 1,000).
    #[serde(default)]
    limit: Option<usize>,
}

/// An offering (F5-3..F5-8): its terms, phase, escrow and a page of its
/// subscriptions (`subscriptions` says how many there are in all).
#[utoipa::path(get, path = "/offerings/{offering}", tag = "ledger",
    params(("offering" = String, Path, description = "The offering's id"), SubscriptionPage),
    responses(
        (status = 200, description = "The offering", body = At<OfferingView>),
        (status = 404, description = "No such offering", body = ErrorBody)))]
pub(super) async fn offering(
    State(s): State<Arc<Shared>>,
    Path(offering): Path<String>,
    Query(page): Query<SubscriptionPage>,
) -> Answer<At<OfferingView>> {
    let offering: RequestId = parse("offering", &offering)?;
    let limit = page
        .limit
        .unwrap_or(tranche_api::OFFERING_ENTRIES_MAX)
        .min(tranche_api::OFFERING_ENTRIES_MAX);
    let view = s.view();
    let o = view
        .ledger
        .offering(&offering)
        .ok_or_else(|| ApiError::not_found(format!("no offering {offering}")))?;
    let phase = serde_json::to_value(o.phase)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let entries = view
        .ledger
        .subscriptions(&offering, page.after)
        .take(limit)
        .map(|s| SubscriptionView {
            wallet: s.wallet,
            units: s.units,
            allocated: s.allocated,
        })
        .collect();
    let answer = OfferingView {
        tsp: o.tsp.clone(),
        terms: o.terms.clone(),
        phase,
        subscribed: o.subscribed,
        allocated: o.allocated,
        subscriptions: o.subscriptions,
        escrow: Ledger::escrow_wallet(&offering),
        entries_from: page.after,
        entries,
    };
    at(&view, answer)
}

/// A revocation request and its check: requested against revoked (SR-1).
#[utoipa::path(get, path = "/revocations/{request}", tag = "ledger",
    params(("request" = String, Path, description = "The request's id")),
    responses(
        (status = 200, description = "The request and its check", body = At<RevocationView>),
        (status = 404, description = "No such request", body = ErrorBody)))]
pub(super) async fn revocation(
    State(s): State<Arc<Shared>>,
    Path(request): Path<String>,
) -> Answer<At<RevocationView>> {
    let request: RequestId = parse("request", &request)?;
    let view = s.view();
    let r = view
        .ledger
        .revocation(&request)
        .ok_or_else(|| ApiError::not_found(format!("no revocation request {request}")))?;
    let answer = RevocationView {
        request: RevocationRequestView {
            tsp: r.tsp.clone(),
            token: r.token.clone(),
            amount: r.amount,
            revoked: r.revoked,
            redemption: r.redemption.clone(),
        },
        check: view.ledger.revocation_check(&request),
    };
    at(&view, answer)
}

/// A ledger check's answer as the API gives it.
fn verdict(r: Result<(), tranche_types::Rejection>) -> TransferCheck {
    match r {
        Ok(()) => TransferCheck {
            ok: true,
            code: None,
            message: None,
            reasons: Vec::new(),
        },
        Err(r) => TransferCheck {
            ok: false,
            code: Some(r.code),
            message: Some(r.message),
            reasons: Vec::new(),
        },
    }
}

/// What `GET /checks/holder` checks.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub(super) struct HolderQuery {
    /// The token.
    token: String,
    /// The wallet.
    wallet: String,
    /// `send` or `receive`.
    side: String,
    /// Whole units, as a decimal string.
    amount: String,
}

/// Whether the rules of a token that concern one wallet alone let it give
/// (`side=send`) or receive (`side=receive`) an amount, whoever the other
/// side turns out to be (identity and claims, country, per-identity and
/// holder limits, freezes, pause, lock-up, expiry; not the balance): what
/// an exchange checks before an order enters its book, so a buyer the
/// ledger would refuse never matches (F6-7).
#[utoipa::path(get, path = "/checks/holder", tag = "ledger", params(HolderQuery),
    responses(
        (status = 200, description = "The verdict", body = At<TransferCheck>),
        (status = 400, description = "A parameter does not parse", body = ErrorBody)))]
pub(super) async fn check_holder(
    State(s): State<Arc<Shared>>,
    Query(q): Query<HolderQuery>,
) -> Answer<At<TransferCheck>> {
    let token: TokenId = parse("token", &q.token)?;
    let wallet: WalletAddress = parse("wallet", &q.wallet)?;
    let amount: Units = parse("amount", &q.amount)?;
    let side = match q.side.as_str() {
        "send" => tranche_ledger::HolderSide::Send,
        "receive" => tranche_ledger::HolderSide::Receive,
        _ => {
            return Err(ApiError::bad_request(format!(
                "side {:?} is not valid: it is send or receive",
                q.side
            )))
        }
    };
    let view = s.view();
    let ctx = BlockContext {
        height: view.height + 1,
        time: view.time,
    };
    at(
        &view,
        verdict(
            view.ledger
                .check_holder(&ctx, &token, &wallet, side, amount),
        ),
    )
}
