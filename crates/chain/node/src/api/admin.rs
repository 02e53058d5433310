//! A token's administration as the API shows it (its rules over time, the
//! claim issuers it trusts, the transfers its agent approved, its
//! documents) and the transfer pre-check, which gives every reason a
//! transfer would be refused.

use super::{at, parse, Answer, ApiError, Shared, View};
use axum::extract::{Path, Query, State};
use axum::Json;
use std::sync::Arc;
use tranche_api::node::{At, Reason, TransferCheck};
use tranche_api::token_admin::{
    ApprovalView, BallotView, ChoiceView, DocumentChangeView, DocumentView, DocumentsView,
    HoldView, InstructionView, RuleVersionView, TokenRulesView, TrustedIssuersView, VoteView,
};
use tranche_api::ErrorBody;
use tranche_ledger::{BlockContext, HoldState, InstructionState};
use tranche_types::{RequestId, TokenId, Units, WalletAddress};

/// What `GET /checks/transfer` checks (and `POST /checks/transfer` carries).
#[derive(Debug, serde::Deserialize, utoipa::IntoParams, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TransferQuery {
    /// The token.
    token: String,
    /// The wallet it would leave.
    from: String,
    /// The wallet it would reach.
    to: String,
    /// Whole units, as a decimal string.
    amount: String,
}

/// Whether a holder's transfer would be applied on the last finalized state
/// and, if not, every rule it breaks with its stable code: the ledger's own
/// checks, run to the end instead of stopping at the first. What a
/// custodian or exchange checks before it signs.
#[utoipa::path(get, path = "/checks/transfer", tag = "ledger", params(TransferQuery),
    responses(
        (status = 200, description = "The verdict", body = At<TransferCheck>),
        (status = 400, description = "A parameter does not parse", body = ErrorBody)))]
pub(super) async fn check_transfer(
    State(s): State<Arc<Shared>>,
    Query(q): Query<TransferQuery>,
) -> Answer<At<TransferCheck>> {
    pre_check(&s, &q)
}

/// The transfer pre-check with its parameters in a JSON body.
#[utoipa::path(post, path = "/checks/transfer", tag = "ledger", request_body = TransferQuery,
    responses(
        (status = 200, description = "The verdict", body = At<TransferCheck>),
        (status = 400, description = "A field does not parse", body = ErrorBody)))]
pub(super) async fn check_transfer_body(
    State(s): State<Arc<Shared>>,
    Json(q): Json<TransferQuery>,
) -> Answer<At<TransferCheck>> {
    pre_check(&s, &q)
}

fn pre_check(s: &Shared, q: &TransferQuery) -> Answer<At<TransferCheck>> {
    let token: TokenId = parse("token", &q.token)?;
    let from: WalletAddress = parse("wallet", &q.from)?;
    let to: WalletAddress = parse("wallet", &q.to)?;
    let amount: Units = parse("amount", &q.amount)?;
    let view = s.view();
    let ctx = BlockContext {
        height: view.height + 1,
        time: view.time,
    };
    let reasons: Vec<Reason> = view
        .ledger
        .transfer_reasons(&ctx, &token, &from, &to, amount)
        .into_iter()
        .map(|r| Reason {
            code: r.code,
            message: r.message,
        })
        .collect();
    let first = reasons.first().cloned();
    let answer = TransferCheck {
        ok: first.is_none(),
        code: first.as_ref().map(|r| r.code),
        message: first.map(|r| r.message),
        reasons,
    };
    at(&view, answer)
}

fn known_token(view: &View, text: &str) -> Result<TokenId, ApiError> {
    let token: TokenId = parse("token", text)?;
    if view.ledger.token(&token).is_none() {
        return Err(ApiError::not_found(format!("no token {token}")));
    }
    Ok(token)
}

/// A token's rules in force with their version and since when, whether
/// their checks are suspended, every earlier version, the claim issuers
/// it trusts by topic, and its agent's outstanding transfer approvals.
#[utoipa::path(get, path = "/tokens/{token}/rules", tag = "ledger",
    params(("token" = String, Path, description = "The token's id")),
    responses(
        (status = 200, description = "The rules", body = At<TokenRulesView>),
        (status = 404, description = "No such token", body = ErrorBody)))]
pub(super) async fn token_rules(
    State(s): State<Arc<Shared>>,
    Path(token): Path<String>,
) -> Answer<At<TokenRulesView>> {
    let view = s.view();
    let token = known_token(&view, &token)?;
    let l = &view.ledger;
    let t = l
        .token(&token)
        .ok_or_else(|| ApiError::not_found(format!("no token {token}")))?;
    let answer = TokenRulesView {
        rules: t.rules.clone(),
        version: t.rules_version,
        since: t.rules_since,
        suspended: t.rules_suspended,
        earlier: l
            .rule_versions(&token)
            .map(|(version, r)| RuleVersionView {
                version,
                rules: r.rules.clone(),
                since: r.since,
                until: r.until,
            })
            .collect(),
        trusted_issuers: l
            .trusted_issuers(&token)
            .map(|(topic, list)| TrustedIssuersView {
                topic,
                issuers: list.iter().cloned().collect(),
            })
            .collect(),
        approvals: l
            .transfer_approvals(&token)
            .map(|(from, to, amount, remaining)| ApprovalView {
                from,
                to,
                amount,
                remaining,
            })
            .collect(),
        exempt: l.limit_exemptions(&token).cloned().collect(),
        token,
    };
    at(&view, answer)
}

/// A token's documents (name, URI, digest, height) and every change to
/// them with its height, oldest first.
#[utoipa::path(get, path = "/tokens/{token}/documents", tag = "ledger",
    params(("token" = String, Path, description = "The token's id")),
    responses(
        (status = 200, description = "The documents", body = At<DocumentsView>),
        (status = 404, description = "No such token", body = ErrorBody)))]
pub(super) async fn token_documents(
    State(s): State<Arc<Shared>>,
    Path(token): Path<String>,
) -> Answer<At<DocumentsView>> {
    let view = s.view();
    let token = known_token(&view, &token)?;
    let l = &view.ledger;
    let answer = DocumentsView {
        documents: l
            .documents(&token)
            .map(|(name, d)| DocumentView {
                name: name.clone(),
                uri: d.uri.clone(),
                digest: d.digest,
                height: d.height,
            })
            .collect(),
        history: l
            .document_history(&token)
            .map(|c| DocumentChangeView {
                height: c.height,
                name: c.name.clone(),
                uri: c.document.as_ref().map(|d| d.uri.clone()),
                digest: c.document.as_ref().map(|d| d.digest),
            })
            .collect(),
        token,
    };
    at(&view, answer)
}

/// Whose vote `GET /ballots/{ballot}` shows.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub(super) struct BallotQuery {
    /// A wallet (tr1...): its vote, if it voted.
    wallet: Option<String>,
}

/// A ballot of a token's holders: its choices with the weight cast for
/// each, its window and whether it is open, and the number of voters; with
/// `?wallet=`, that wallet's vote.
#[utoipa::path(get, path = "/ballots/{ballot}", tag = "ledger",
    params(("ballot" = String, Path, description = "The ballot's id"), BallotQuery),
    responses(
        (status = 200, description = "The ballot", body = At<BallotView>),
        (status = 404, description = "No such ballot", body = ErrorBody)))]
pub(super) async fn ballot(
    State(s): State<Arc<Shared>>,
    Path(ballot): Path<String>,
    Query(q): Query<BallotQuery>,
) -> Answer<At<BallotView>> {
    let ballot: RequestId = parse("ballot", &ballot)?;
    let wallet: Option<WalletAddress> = q
        .wallet
        .as_deref()
        .map(|w| parse("wallet", w))
        .transpose()?;
    let view = s.view();
    let b = view
        .ledger
        .ballot(&ballot)
        .ok_or_else(|| ApiError::not_found(format!("no ballot {ballot}")))?;
    let vote = wallet.and_then(|w| {
        view.ledger.ballot_vote(&ballot, &w).map(|v| VoteView {
            wallet: w,
            choice: v.choice,
            weight: v.weight,
            height: v.height,
        })
    });
    let answer = BallotView {
        token: b.token.clone(),
        agent: b.agent.clone(),
        checkpoint: b.checkpoint,
        choices: b
            .choices
            .iter()
            .zip(b.tally.iter())
            .enumerate()
            .map(|(i, (label, weight))| ChoiceView {
                choice: i as u8,
                label: label.clone(),
                weight: *weight,
            })
            .collect(),
        opens: b.opens,
        closes: b.closes,
        open: view.time >= b.opens && view.time < b.closes,
        voters: b.voters,
        height: b.height,
        vote,
        ballot,
    };
    at(&view, answer)
}

/// A hold: the holder's wallet, the units, the notary, the receiver if
/// named, its expiry and where it stands, with what all the wallet's holds
/// of the token hold now.
#[utoipa::path(get, path = "/holds/{hold}", tag = "ledger",
    params(("hold" = String, Path, description = "The hold's id")),
    responses(
        (status = 200, description = "The hold", body = At<HoldView>),
        (status = 404, description = "No such hold", body = ErrorBody)))]
pub(super) async fn hold(
    State(s): State<Arc<Shared>>,
    Path(hold): Path<String>,
) -> Answer<At<HoldView>> {
    let hold: RequestId = parse("hold", &hold)?;
    let view = s.view();
    let h = view
        .ledger
        .hold(&hold)
        .ok_or_else(|| ApiError::not_found(format!("no hold {hold}")))?;
    // As of the next block: what a transaction sent now is checked against.
    let ctx = BlockContext {
        height: view.height + 1,
        time: view.time,
    };
    let state = match h.state {
        HoldState::Open if h.expiry <= view.time => "expired",
        HoldState::Open => "open",
        HoldState::Executed => "executed",
        HoldState::Released => "released",
    };
    let answer = HoldView {
        token: h.token.clone(),
        wallet: h.wallet,
        amount: h.amount,
        notary: h.notary,
        receiver: h.receiver,
        expiry: h.expiry,
        state: state.into(),
        height: h.height,
        wallet_held: view.ledger.held(&ctx, &h.token, &h.wallet),
        hold,
    };
    at(&view, answer)
}

/// A settlement instruction: its legs, who affirmed and who is awaited,
/// where it stands, and why it failed if it did.
#[utoipa::path(get, path = "/instructions/{instruction}", tag = "ledger",
    params(("instruction" = String, Path, description = "The instruction's id")),
    responses(
        (status = 200, description = "The instruction", body = At<InstructionView>),
        (status = 404, description = "No such instruction", body = ErrorBody)))]
pub(super) async fn instruction(
    State(s): State<Arc<Shared>>,
    Path(instruction): Path<String>,
) -> Answer<At<InstructionView>> {
    let instruction: RequestId = parse("instruction", &instruction)?;
    let view = s.view();
    let i = view
        .ledger
        .instruction(&instruction)
        .ok_or_else(|| ApiError::not_found(format!("no instruction {instruction}")))?;
    let mut givers: Vec<WalletAddress> = Vec::new();
    for l in i.legs.iter() {
        if !givers.contains(&l.from) {
            givers.push(l.from);
        }
    }
    let state = match i.state {
        InstructionState::Pending if i.deadline <= view.time => "expired",
        InstructionState::Pending => "pending",
        InstructionState::Executed => "executed",
        InstructionState::Failed => "failed",
        InstructionState::Cancelled => "cancelled",
    };
    let answer = InstructionView {
        creator: i.creator,
        legs: i.legs.0.clone(),
        ordered: i.ordered,
        deadline: i.deadline,
        awaiting: givers
            .into_iter()
            .filter(|g| !i.affirmed.contains(g))
            .collect(),
        affirmed: i.affirmed.0.clone(),
        state: state.into(),
        failure: i.failure.as_ref().map(|r| Reason {
            code: r.code,
            message: r.message.clone(),
        }),
        height: i.height,
        instruction,
    };
    at(&view, answer)
}
