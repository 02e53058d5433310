//! What the issuer takes from each finalized block: requests naming it,
//! withdrawals, and the outcome of its own executions with their check.

use crate::queue::{self, Kind, State};
use crate::Issuer;
use sqlx::AnyConnection;
use std::future::Future;
use std::pin::Pin;
use tranche_api::node::BlockRecord;
use tranche_service::audit::Entry;
use tranche_service::follower::Apply;
use tranche_service::ServiceError;
use tranche_types::{Outcome, Payload};

impl Apply for Issuer {
    fn apply<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        block: &'a BlockRecord,
    ) -> Pin<Box<dyn Future<Output = Result<(), ServiceError>> + Send + 'a>> {
        Box::pin(self.apply_block(conn, block))
    }
}

/// What the chain's check (SR-1) says of an execution.
struct ChainCheck {
    /// Carried out, by this issuer.
    done: bool,
    /// Units issued or revoked.
    moved: Option<u128>,
    /// Units requested.
    requested: u128,
    /// The TSP that filed it.
    tsp: String,
}

impl Issuer {
    /// Records the chain's check of the service's own execution of `id`:
    /// `None` if the chain rejected it, `Some(None)` if the node shows no
    /// check, else the check.
    async fn record_check(
        &self,
        conn: &mut AnyConnection,
        kind: Kind,
        id: &str,
        check: Option<Option<ChainCheck>>,
        outcome: &str,
        entry: impl Fn(Entry) -> Entry,
    ) -> Result<(), ServiceError> {
        let verb = match kind {
            Kind::Issuance | Kind::Offering => "issued",
            Kind::Revocation => "revoked",
            Kind::Freeze => "frozen",
            Kind::Administration => "applied",
        };
        let (state, checked) = match check {
            None => (State::Failed, format!("rejected: {outcome}")),
            Some(None) => (State::Mismatch, "the node shows no check for it".into()),
            Some(Some(c)) if c.done && c.moved == Some(c.requested) => (
                State::Checked,
                format!(
                    "{verb} {} of {} requested by {}",
                    c.requested, c.requested, c.tsp
                ),
            ),
            Some(Some(c)) => (
                State::Mismatch,
                format!("{verb} {:?} of {} requested", c.moved, c.requested),
            ),
        };
        queue::settle(conn, kind, id, state, Some(outcome), Some(&checked)).await?;
        let org = self.service.config.org.clone();
        let e = entry(Entry::by_chain(
            &org,
            "check",
            format!("{}/{id}", kind.name()),
            format!("{}: {checked}", state.name()),
        ));
        self.service.decide(conn, None, e).await?;
        Ok(())
    }

    /// Queues a request the chain filed (once) and notes it in the audit log.
    async fn file(
        &self,
        conn: &mut AnyConnection,
        (kind, id, tsp, token, amount, detail): (
            Kind,
            String,
            String,
            String,
            tranche_types::Units,
            String,
        ),
        height: u64,
        entry: &impl Fn(Entry) -> Entry,
    ) -> Result<(), ServiceError> {
        if queue::file(conn, kind, &id, &tsp, &token, amount, detail, height).await? {
            let subject = format!("{}/{id}", kind.name());
            let e = entry(Entry::by_chain(&tsp, "file", subject, "queued".into()));
            self.service.decide(conn, None, e).await?;
        }
        Ok(())
    }

    /// After one of its issuance batches of offering `id` is final: once
    /// the last of the group sent together is, the check that what was
    /// issued is what was allocated, or the next batch if the chain still
    /// waits for one.
    async fn offering_step(
        &self,
        conn: &mut AnyConnection,
        id: &str,
        (nonce, applied): (u64, bool),
        outcome: &str,
        entry: impl Fn(Entry) -> Entry,
    ) -> Result<(), ServiceError> {
        let s = &self.service;
        if queue::pending_nonce(conn, Kind::Offering, id)
            .await?
            .is_some_and(|last| nonce < last)
        {
            // One of a group in flight: the group's last one decides.
            return Ok(());
        }
        let v = s
            .node
            .offering(id)
            .await
            .map_err(ServiceError::unavailable)?
            .ok_or_else(|| ServiceError::internal("an issued offering", id))?
            .data;
        let issued = matches!(v.phase.as_str(), "issued" | "released");
        if !applied && !issued {
            return self
                .record_check(conn, Kind::Offering, id, None, outcome, entry)
                .await;
        }
        if v.phase == "allocated" {
            // More subscriptions than the group walked: the next batch.
            let e = Entry {
                authority: "approved".into(),
                ..Entry::by_chain(
                    &s.config.org,
                    "execute",
                    format!("offering/{id}"),
                    "next batch sent".into(),
                )
            };
            let (next, hash) = s.decide_tx(conn, queue::issue_batch(id)?, e).await?;
            sqlx::query(
                "UPDATE issuer_requests SET execution_tx = $1, pending_nonce = $2
                 WHERE kind = 'offering' AND request = $3",
            )
            .bind(hash.to_hex())
            .bind(next as i64)
            .bind(id.to_string())
            .execute(&mut *conn)
            .await?;
            return Ok(());
        }
        let token = s
            .node
            .token(v.terms.token.as_str())
            .await
            .map_err(ServiceError::unavailable)?
            .map(|t| t.data.token.issued.0);
        let check = ChainCheck {
            done: issued,
            moved: token,
            requested: v.allocated.0,
            tsp: v.tsp.to_string(),
        };
        self.record_check(conn, Kind::Offering, id, Some(Some(check)), outcome, entry)
            .await
    }

    async fn apply_block(
        &self,
        conn: &mut AnyConnection,
        block: &BlockRecord,
    ) -> Result<(), ServiceError> {
        let s = &self.service;
        let org = s.config.org.as_str();
        let ours = s.key.public_key();
        let height = block.height;
        for (stx, receipt) in block.block.txs.iter().zip(&block.receipts) {
            let applied = matches!(receipt.outcome, Outcome::Applied);
            let outcome = match &receipt.outcome {
                Outcome::Applied => "applied".to_string(),
                Outcome::Rejected(r) => r.code.name().to_string(),
            };
            let entry = |mut e: Entry| {
                e.tx = Some(receipt.tx_hash.to_hex());
                e
            };
            match &stx.tx.payload {
                Payload::RequestIssuance(p) if applied && p.issuer.as_str() == org => {
                    let id = p.request.to_string();
                    let tsp = s
                        .node
                        .issuance(&id)
                        .await
                        .map_err(ServiceError::unavailable)?
                        .map_or_else(String::new, |v| v.data.request.tsp.to_string());
                    let detail = serde_json::to_string(p).expect("a payload serializes");
                    let filed = (
                        Kind::Issuance,
                        id,
                        tsp,
                        p.token.to_string(),
                        p.amount,
                        detail,
                    );
                    self.file(conn, filed, height, &entry).await?;
                }
                Payload::RequestRevocation(p) if applied => {
                    // Ours if we issued the token, by request or offering.
                    let (issued,): (i64,) = sqlx::query_as(
                        "SELECT COUNT(*) FROM issuer_requests WHERE kind IN ('issuance', 'offering') AND token = $1 AND state = 'checked'",
                    )
                    .bind(p.token.to_string())
                    .fetch_one(&mut *conn)
                    .await?;
                    if issued == 0 {
                        continue;
                    }
                    let id = p.request.to_string();
                    let tsp = s
                        .node
                        .revocation(&id)
                        .await
                        .map_err(ServiceError::unavailable)?
                        .map_or_else(String::new, |v| v.data.request.tsp.to_string());
                    let detail = serde_json::to_string(p).expect("a payload serializes");
                    let filed = (
                        Kind::Revocation,
                        id,
                        tsp,
                        p.token.to_string(),
                        p.amount,
                        detail,
                    );
                    self.file(conn, filed, height, &entry).await?;
                }
                Payload::WithdrawIssuance(p) if applied => {
                    let id = p.request.to_string();
                    if let Some(r) =
                        queue::get(conn, Kind::Issuance, &id, self.approvals_required).await?
                    {
                        if matches!(r.state, State::Pending | State::Refused) {
                            queue::settle(conn, Kind::Issuance, &id, State::Withdrawn, None, None)
                                .await?;
                            let e = entry(Entry::by_chain(
                                &r.tsp,
                                "withdraw",
                                format!("issuance/{id}"),
                                "withdrawn".into(),
                            ));
                            s.decide(conn, None, e).await?;
                        }
                    }
                }
                Payload::ExecuteIssuance(p) if stx.tx.signer == ours => {
                    let id = p.request.to_string();
                    let check = if applied {
                        let c = s
                            .node
                            .issuance(&id)
                            .await
                            .map_err(ServiceError::unavailable)?
                            .and_then(|v| v.data.check);
                        Some(c.map(|c| ChainCheck {
                            done: c.executed && c.issuer.as_str() == org,
                            moved: c.issued.map(|u| u.0),
                            requested: c.requested.0,
                            tsp: c.tsp.to_string(),
                        }))
                    } else {
                        None
                    };
                    self.record_check(conn, Kind::Issuance, &id, check, &outcome, entry)
                        .await?;
                }
                Payload::CloseOffering(p) if applied => {
                    // Ours once its close fixed the allocations we issue.
                    let id = p.offering.to_string();
                    let Some(v) = s
                        .node
                        .offering(&id)
                        .await
                        .map_err(ServiceError::unavailable)?
                    else {
                        continue;
                    };
                    let v = v.data;
                    let closed = !matches!(
                        v.phase.as_str(),
                        "open" | "refunding" | "allocating" | "refunded"
                    );
                    if v.terms.issuer.as_str() == org && closed {
                        let detail = serde_json::to_string(&v.terms).expect("terms serialize");
                        let filed = (
                            Kind::Offering,
                            id,
                            v.tsp.to_string(),
                            v.terms.token.to_string(),
                            v.allocated,
                            detail,
                        );
                        self.file(conn, filed, height, &entry).await?;
                    }
                }
                Payload::IssueOffering(p) if stx.tx.signer == ours => {
                    let id = p.offering.to_string();
                    self.offering_step(conn, &id, (stx.tx.nonce, applied), &outcome, entry)
                        .await?;
                }
                Payload::ExecuteRevocation(p) if stx.tx.signer == ours => {
                    let id = p.request.to_string();
                    let check = if applied {
                        let c = s
                            .node
                            .revocation(&id)
                            .await
                            .map_err(ServiceError::unavailable)?
                            .and_then(|v| v.data.check);
                        Some(c.map(|c| ChainCheck {
                            done: c.executed,
                            moved: c.revoked.map(|u| u.0),
                            requested: c.requested.0,
                            tsp: c.tsp.to_string(),
                        }))
                    } else {
                        None
                    };
                    self.record_check(conn, Kind::Revocation, &id, check, &outcome, entry)
                        .await?;
                }
                p if stx.tx.signer == ours && crate::administration::is_agent_action(p) => {
                    let tx = receipt.tx_hash.to_hex();
                    let row: Option<(String, String)> = sqlx::query_as(
                        "SELECT kind, request FROM issuer_requests
                         WHERE kind IN ('freeze', 'administration') AND execution_tx = $1",
                    )
                    .bind(tx)
                    .fetch_optional(&mut *conn)
                    .await?;
                    let Some((kind, id)) = row else { continue };
                    let kind = Kind::parse(&kind)?;
                    let (state, checked) = if applied {
                        (
                            State::Checked,
                            format!("{} in block {height}", crate::administration::describe(p)),
                        )
                    } else {
                        (State::Failed, format!("rejected: {outcome}"))
                    };
                    queue::settle(conn, kind, &id, state, Some(&outcome), Some(&checked)).await?;
                    let e = entry(Entry::by_chain(
                        org,
                        "check",
                        format!("{}/{id}", kind.name()),
                        format!("{}: {checked}", state.name()),
                    ));
                    s.decide(conn, None, e).await?;
                }
                _ => {}
            }
        }
        let (pending,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM issuer_requests WHERE state = 'pending'")
                .fetch_one(&mut *conn)
                .await?;
        s.metrics
            .queue("approvals", usize::try_from(pending).unwrap_or(0));
        Ok(())
    }
}
