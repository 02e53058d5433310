//! Proofs of single records of the last finalized state: a balance, an
//! issuance or revocation request, a claim, a custody binding — each with
//! the Merkle path to the state root, so another party can check it
//! without trusting this node (SR-1, SR-2, REC-2).

use super::{at, parse, Answer, Shared};
use axum::extract::{Path, State};
use std::sync::Arc;
use tranche_api::node::{At, ProofView};
use tranche_api::ErrorBody;
use tranche_ledger::{Ledger, StateProof};
use tranche_types::{ClaimTopic, Did, OrgId, RequestId, TokenId, WalletAddress};

/// The proof `prove` makes on the last finalized state, answered with the
/// height and root it holds against.
fn proved(s: &Shared, prove: impl FnOnce(&Ledger) -> StateProof) -> Answer<At<ProofView>> {
    let view = s.view();
    let proof = prove(&view.ledger);
    let (key_text, value_text) = proof.describe().expect("a proof the state made reads back");
    let merkle = serde_json::to_value(&proof.proof).expect("a Merkle proof serializes");
    let answer = ProofView {
        chain_id: proof.chain_id,
        table: proof.table,
        key: proof.key,
        value: proof.value,
        tree_root: proof.tree_root,
        proof: merkle,
        key_text,
        value_text,
    };
    at(&view, answer)
}

/// A wallet's balance of a token, or that it holds none.
#[utoipa::path(get, path = "/proofs/balances/{token}/{wallet}", tag = "proofs",
    params(
        ("token" = String, Path, description = "The token"),
        ("wallet" = String, Path, description = "The wallet address (tr1...)")),
    responses(
        (status = 200, description = "The balance (absent: none) and its proof", body = At<ProofView>),
        (status = 400, description = "Not a token id or wallet address", body = ErrorBody)))]
pub(super) async fn balance(
    State(s): State<Arc<Shared>>,
    Path((token, wallet)): Path<(String, String)>,
) -> Answer<At<ProofView>> {
    let token: TokenId = parse("token", &token)?;
    let wallet: WalletAddress = parse("wallet address", &wallet)?;
    proved(&s, |l| l.prove_balance(&token, &wallet))
}

/// An issuance request and what came of it, or that there is none.
#[utoipa::path(get, path = "/proofs/issuances/{request}", tag = "proofs",
    params(("request" = String, Path, description = "The request's id")),
    responses(
        (status = 200, description = "The request (absent: none) and its proof", body = At<ProofView>),
        (status = 400, description = "Not a request id", body = ErrorBody)))]
pub(super) async fn issuance(
    State(s): State<Arc<Shared>>,
    Path(request): Path<String>,
) -> Answer<At<ProofView>> {
    let request: RequestId = parse("request", &request)?;
    proved(&s, |l| l.prove_issuance(&request))
}

/// A revocation request and what came of it, or that there is none.
#[utoipa::path(get, path = "/proofs/revocations/{request}", tag = "proofs",
    params(("request" = String, Path, description = "The request's id")),
    responses(
        (status = 200, description = "The request (absent: none) and its proof", body = At<ProofView>),
        (status = 400, description = "Not a request id", body = ErrorBody)))]
pub(super) async fn revocation(
    State(s): State<Arc<Shared>>,
    Path(request): Path<String>,
) -> Answer<At<ProofView>> {
    let request: RequestId = parse("request", &request)?;
    proved(&s, |l| l.prove_revocation(&request))
}

/// The claim `issuer` made about `did` on `topic` (its digest, expiry and
/// whether it was withdrawn), or that there is none.
#[utoipa::path(get, path = "/proofs/claims/{did}/{topic}/{issuer}", tag = "proofs",
    params(
        ("did" = String, Path, description = "The DID"),
        ("topic" = u16, Path, description = "The claim topic's number (1 KYC, 2 accreditation, 3 jurisdiction, ...)"),
        ("issuer" = String, Path, description = "The claim issuer's organisation id")),
    responses(
        (status = 200, description = "The claim (absent: none) and its proof", body = At<ProofView>),
        (status = 400, description = "Not a DID, topic or organisation id", body = ErrorBody)))]
pub(super) async fn claim(
    State(s): State<Arc<Shared>>,
    Path((did, topic, issuer)): Path<(String, String, String)>,
) -> Answer<At<ProofView>> {
    let did: Did = parse("DID", &did)?;
    let topic: u16 = parse("claim topic", &topic)?;
    let issuer: OrgId = parse("organisation", &issuer)?;
    proved(&s, |l| l.prove_claim(&did, ClaimTopic(topic), &issuer))
}

/// A custodial wallet's custody binding (its custodian and holder), or
/// that the wallet is not custodial.
#[utoipa::path(get, path = "/proofs/custody/{wallet}", tag = "proofs",
    params(("wallet" = String, Path, description = "The custodial wallet's address (tr1...)")),
    responses(
        (status = 200, description = "The binding (absent: none) and its proof", body = At<ProofView>),
        (status = 400, description = "Not a wallet address", body = ErrorBody)))]
pub(super) async fn custody(
    State(s): State<Arc<Shared>>,
    Path(wallet): Path<String>,
) -> Answer<At<ProofView>> {
    let wallet: WalletAddress = parse("wallet address", &wallet)?;
    proved(&s, |l| l.prove_custody(&wallet))
}
