//! The chain's side of the API: status, submissions, finalized transactions
//! and blocks, nonces and validators.

use super::{admit_error, at, parse, Answer, ApiError, Shared};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tranche_api::block_binary::BLOCK_MEDIA_TYPE;
use tranche_api::node::{
    AmlPolicyEntry, AmlPolicyView, At, BatchAnswer, BatchItem, BlockRecord, EquivocationView,
    MemberView, NextNonce, PolicyView, Status, SubmitStatus, Submitted, TransactionRecord,
    ValidatorView, Validators,
};
use tranche_api::{ErrorBody, ErrorCode, BATCH_BODY_BYTES_MAX, BATCH_TXS_MAX};
use tranche_block::AdmitError;
use tranche_ledger::{Ledger, Member};
use tranche_types::{Hash, Outcome, Payload, PublicKey, SignedTransaction};

pub(super) fn member(m: &Member) -> MemberView {
    MemberView {
        org: m.org.clone(),
        key: m.key,
    }
}

/// The node's chain, its last finalized block and the committee.
#[utoipa::path(get, path = "/status", tag = "chain",
    responses((status = 200, description = "This node and its last finalized block", body = Status)))]
pub(super) async fn status(State(s): State<Arc<Shared>>) -> Answer<Status> {
    let view = s.view();
    let committee = view.ledger.committee();
    Ok(Json(Status {
        chain_id: s.chain_id.clone(),
        org: s.org.clone(),
        key: s.me,
        finalized_height: view.height,
        block_hash: view.block_hash,
        block_time: view.time,
        state_root: view.state_root,
        epoch: committee.epoch,
        validating: committee.members.0.iter().any(|m| m.key == s.me),
        validators: committee.members.0.iter().map(member).collect(),
    }))
}

fn finalized(hash: Hash, height: u64, index: u32) -> Submitted {
    Submitted {
        hash,
        status: SubmitStatus::Finalized,
        height: Some(height),
        index: Some(index),
    }
}

/// Where the transaction the mempool called a used nonce is, if it was
/// stored between the look before submitting and the mempool's answer: a
/// repeated submission is harmless however it races the store.
fn stored_meanwhile(
    s: &Shared,
    e: &AdmitError,
    hash: &Hash,
) -> Result<Option<(u64, u32)>, ApiError> {
    match e {
        AdmitError::NonceUsed { .. } => Ok(s.store.transaction(hash)?),
        _ => Ok(None),
    }
}

/// Submits a signed transaction (as `tranche tx sign --format json` writes it).
#[utoipa::path(post, path = "/transactions", tag = "chain",
    request_body(content = Object, description = "A signed transaction in JSON"),
    responses(
        (status = 202, description = "Accepted into the mempool", body = Submitted),
        (status = 200, description = "Already finalized: resubmitting is harmless", body = Submitted),
        (status = 400, description = "Not a signed transaction", body = ErrorBody),
        (status = 409, description = "nonce_used or nonce_taken", body = ErrorBody),
        (status = 422, description = "tx_invalid, tx_expired, tx_validity_too_long, tx_too_large or nonce_too_far", body = ErrorBody),
        (status = 503, description = "mempool_full: try again shortly", body = ErrorBody)))]
pub(super) async fn submit(
    State(s): State<Arc<Shared>>,
    body: Result<Json<SignedTransaction>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Submitted>), ApiError> {
    let Json(stx) = body.map_err(|e| {
        ApiError::bad_request(format!(
            "the body is not a signed transaction in JSON (as `tranche tx sign --format json` writes it): {}",
            e.body_text()
        ))
    })?;
    let hash = stx.hash();
    // Resubmitting a finalized transaction is harmless: say where it is.
    if let Some((height, index)) = s.store.transaction(&hash)? {
        return Ok((StatusCode::OK, Json(finalized(hash, height, index))));
    }
    let hash = match s.mailbox.submit(stx).await {
        Ok(hash) => hash,
        Err(e) => match stored_meanwhile(&s, &e, &hash)? {
            Some((height, index)) => {
                return Ok((StatusCode::OK, Json(finalized(hash, height, index))))
            }
            None => return Err(admit_error(e)),
        },
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(Submitted {
            hash,
            status: SubmitStatus::Pending,
            height: None,
            index: None,
        }),
    ))
}

/// Submits up to 1,000 signed transactions at once; each is answered as a
/// single submission would be, in order.
#[utoipa::path(post, path = "/transactions/batch", tag = "chain",
    request_body(content = Vec<Object>, description = "A JSON array of signed transactions"),
    responses(
        (status = 200, description = "One answer per transaction", body = BatchAnswer),
        (status = 400, description = "Not an array of signed transactions", body = ErrorBody),
        (status = 413, description = "too_large: too many transactions or bytes", body = ErrorBody)))]
pub(super) async fn submit_batch(
    State(s): State<Arc<Shared>>,
    body: Result<Json<Vec<SignedTransaction>>, axum::extract::rejection::JsonRejection>,
) -> Answer<BatchAnswer> {
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
    let mut results: Vec<Option<BatchItem>> = Vec::with_capacity(txs.len());
    let mut pending = Vec::with_capacity(txs.len());
    for stx in txs {
        let hash = stx.hash();
        // Resubmitting a finalized transaction is harmless: say where it is.
        match s.store.transaction(&hash)? {
            Some((height, index)) => results.push(Some(BatchItem {
                hash,
                status: Some(SubmitStatus::Finalized),
                height: Some(height),
                index: Some(index),
                error: None,
            })),
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
            Ok(hash) => BatchItem {
                hash,
                status: Some(SubmitStatus::Pending),
                height: None,
                index: None,
                error: None,
            },
            Err(e) => match stored_meanwhile(&s, &e, &hash)? {
                Some((height, index)) => BatchItem {
                    hash,
                    status: Some(SubmitStatus::Finalized),
                    height: Some(height),
                    index: Some(index),
                    error: None,
                },
                None => {
                    refused += 1;
                    BatchItem {
                        hash,
                        status: None,
                        height: None,
                        index: None,
                        error: Some(admit_error(e).body()),
                    }
                }
            },
        });
    }
    let results: Vec<BatchItem> = results.into_iter().flatten().collect();
    Ok(Json(BatchAnswer {
        accepted: results.len() - refused,
        refused,
        results,
    }))
}

/// A finalized transaction: its block, position, time and receipt.
#[utoipa::path(get, path = "/transactions/{hash}", tag = "chain",
    params(("hash" = String, Path, description = "The transaction's id (64 hex digits)")),
    responses(
        (status = 200, description = "Finalized, with its receipt", body = TransactionRecord),
        (status = 404, description = "Not finalized on this node (yet)", body = ErrorBody)))]
pub(super) async fn transaction(
    State(s): State<Arc<Shared>>,
    Path(hash): Path<String>,
) -> Answer<TransactionRecord> {
    let hash: Hash = parse("transaction hash", &hash)?;
    // A block is stored a moment before the ledger view after it is
    // published: it is served from then on, so that whoever sees it sees
    // its effects in every other answer (status, wallets, tokens) too.
    let Some((height, index)) = s
        .store
        .transaction(&hash)?
        .filter(|(height, _)| *height <= s.view().height)
    else {
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
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("receipt {index} of block {height}")))?;
    let block = s.store.block(height)?;
    let stx = block
        .as_ref()
        .and_then(|b| usize::try_from(index).ok().and_then(|i| b.txs.get(i)));
    // What an applied transaction created at an address derived on chain,
    // so its sender need not work the address out.
    let custodial_wallet = match (stx, &receipt.outcome) {
        (Some(stx), Outcome::Applied) => match &stx.tx.payload {
            Payload::OpenCustodialWallet(p) => s
                .view()
                .ledger
                .organisation_of_key(&stx.tx.signer)
                .map(|org| Ledger::custodial_wallet(org, &p.holder)),
            _ => None,
        },
        _ => None,
    };
    Ok(Json(TransactionRecord {
        hash,
        status: SubmitStatus::Finalized,
        height,
        index,
        block_time: block.as_ref().map(|b| b.header.time),
        receipt,
        custodial_wallet,
    }))
}

/// The block at `height` in the form `headers` ask for: the binary form
/// if `Accept` names it, JSON otherwise. Both come from one read of the
/// parts the store keeps.
fn block_answer(s: &Shared, height: u64, headers: &HeaderMap) -> Result<Response, ApiError> {
    let binary = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|t| t.trim().starts_with(BLOCK_MEDIA_TYPE)));
    // Served once the ledger view after it is published (see `transaction`).
    let parts = s
        .store
        .block_parts(height)?
        .filter(|_| height <= s.view().height)
        .ok_or_else(|| ApiError::not_found(format!("no finalized block at height {height}")))?;
    let damaged = |e: tranche_types::DecodeError| {
        ApiError::from(tranche_storage::StorageError::Damaged(format!(
            "block {height}: {e}"
        )))
    };
    // Served as stored, undecoded: a follower's read costs the node a copy.
    let body = tranche_api::block_binary::from_stored_parts(
        height,
        parts.state_root,
        &parts.block,
        &parts.receipts,
        parts.transfers.iter().map(Vec::as_slice),
    )
    .map_err(damaged)?;
    if binary {
        return Ok(([(header::CONTENT_TYPE, BLOCK_MEDIA_TYPE)], body).into_response());
    }
    let record = BlockRecord::from_binary(&body).map_err(damaged)?;
    Ok(Json(record).into_response())
}

/// The last finalized block.
#[utoipa::path(get, path = "/blocks/latest", tag = "chain",
    responses(
        (status = 200, description = "The block, its receipts and the state root after it: JSON, or its binary form when `Accept` asks for application/vnd.tranche.block",
            content((BlockRecord = "application/json"), (Vec<u8> = "application/vnd.tranche.block"))),
        (status = 404, description = "Nothing finalized yet", body = ErrorBody)))]
pub(super) async fn latest_block(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let height = s.view().height;
    block_answer(&s, height, &headers)
}

/// The longest a request for a block not yet final may wait for it.
pub const BLOCK_WAIT_MS_MAX: u64 = 10_000;

/// How long to wait for a block not final yet.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub(super) struct BlockWait {
    /// Milliseconds to wait for the block if it is not final yet (at most
    /// 10,000; default 0): a follower learns of each block as it is
    /// finalized, without polling.
    #[serde(default)]
    wait_ms: u64,
}

/// The finalized block at a height.
#[utoipa::path(get, path = "/blocks/{height}", tag = "chain",
    params(("height" = u64, Path, description = "The block's height"), BlockWait),
    responses(
        (status = 200, description = "The block, its receipts and the state root after it: JSON, or its binary form when `Accept` asks for application/vnd.tranche.block",
            content((BlockRecord = "application/json"), (Vec<u8> = "application/vnd.tranche.block"))),
        (status = 400, description = "Not a height, or too long a wait", body = ErrorBody),
        (status = 404, description = "No finalized block there (within the wait)", body = ErrorBody)))]
pub(super) async fn block(
    State(s): State<Arc<Shared>>,
    Path(height): Path<String>,
    Query(wait): Query<BlockWait>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let height: u64 = height
        .parse()
        .map_err(|_| ApiError::bad_request(format!("height {height:?} is not a number")))?;
    if wait.wait_ms > BLOCK_WAIT_MS_MAX {
        return Err(ApiError::bad_request(format!(
            "wait_ms is at most {BLOCK_WAIT_MS_MAX}"
        )));
    }
    // Listening before looking, so a block finalized in between is heard.
    let mut finalized = s.events.subscribe();
    if wait.wait_ms > 0 && s.view().height < height {
        // Not final within the wait: answered below as not found.
        let _ = tokio::time::timeout(Duration::from_millis(wait.wait_ms), async {
            loop {
                match finalized.recv().await {
                    Ok(f) if f.block.header.height >= height => return,
                    Ok(_) | Err(RecvError::Lagged(_)) => {
                        if s.view().height >= height {
                            return;
                        }
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        })
        .await;
    }
    block_answer(&s, height, &headers)
}

/// The nonce a signer's next transaction must carry.
#[utoipa::path(get, path = "/signers/{key}/nonce", tag = "chain",
    params(("key" = String, Path, description = "The signer's public key (64 hex digits)")),
    responses(
        (status = 200, description = "The next nonce", body = At<NextNonce>),
        (status = 400, description = "Not a public key", body = ErrorBody)))]
pub(super) async fn nonce(
    State(s): State<Arc<Shared>>,
    Path(key): Path<String>,
) -> Answer<At<NextNonce>> {
    let key: PublicKey = parse("public key", &key)?;
    let view = s.view();
    let next_nonce = view.ledger.next_nonce(&key);
    at(&view, NextNonce { next_nonce })
}

pub(super) fn validator_view(
    org: &tranche_types::OrgId,
    v: &tranche_ledger::Validator,
    elected: bool,
) -> ValidatorView {
    ValidatorView {
        org: org.clone(),
        consensus_key: v.consensus_key,
        bonded: v.bonded,
        delegated: v.delegated,
        tombstoned: v.tombstoned,
        elected,
    }
}

/// The network's policy, as governance last set it (SR-6).
#[utoipa::path(get, path = "/policy", tag = "chain",
    responses((status = 200, description = "The network's policy", body = At<PolicyView>)))]
pub(super) async fn policy(State(s): State<Arc<Shared>>) -> Answer<At<PolicyView>> {
    let view = s.view();
    let p = &view.ledger.params().policy;
    let answer = PolicyView {
        appraisal_tolerance_bps: p.appraisal_tolerance_bps,
    };
    at(&view, answer)
}

/// The AML regulator's policy (F6-1): every version published, and the
/// one governing the next block.
#[utoipa::path(get, path = "/aml-policy", tag = "chain",
    responses((status = 200, description = "The AML policy's versions", body = At<AmlPolicyView>)))]
pub(super) async fn aml_policy(State(s): State<Arc<Shared>>) -> Answer<At<AmlPolicyView>> {
    let view = s.view();
    let entry = |n: u32, v: &tranche_ledger::AmlPolicyVersion| AmlPolicyEntry {
        version: n,
        regulator: v.regulator.clone(),
        effective_height: v.effective_height,
        published_height: v.published_height,
        policy: v.policy.clone(),
    };
    let versions = view
        .ledger
        .aml_policies()
        .map(|(n, v)| entry(*n, v))
        .collect();
    let next = view.height + 1;
    let in_force = view.ledger.aml_policy_at(next).map(|(n, v)| entry(n, v));
    at(&view, AmlPolicyView { in_force, versions })
}

/// The committee signing consensus votes, every bonded validator with its
/// stake and standing, and every equivocation recorded (C-2).
#[utoipa::path(get, path = "/validators", tag = "chain",
    responses((status = 200, description = "The committee, validators and equivocations", body = At<Validators>)))]
pub(super) async fn validators(State(s): State<Arc<Shared>>) -> Answer<At<Validators>> {
    let view = s.view();
    let elected = view.ledger.next_committee();
    let epoch = view.ledger.committee().epoch;
    let answer = Validators {
        epoch,
        epoch_blocks: view.ledger.params().epoch_blocks,
        next_epoch_at: view.ledger.epoch_end(epoch),
        committee: view
            .ledger
            .committee()
            .members
            .0
            .iter()
            .map(member)
            .collect(),
        validators: view
            .ledger
            .validators()
            .map(|(org, v)| validator_view(org, v, elected.iter().any(|m| m.org == *org)))
            .collect(),
        equivocations: view
            .ledger
            .equivocations()
            .map(|((key, epoch, view), e)| EquivocationView {
                org: e.org.clone(),
                key: *key,
                epoch: *epoch,
                view: *view,
                kind: e.kind,
                height: e.height,
                slashed: e.slashed,
                evidence: e.evidence,
            })
            .collect(),
    };
    at(&view, answer)
}
