//! What the TSP takes from each finalized block, in the follower's
//! transaction: the outcome of its own registrations, bindings and
//! openings; appraisals of its assets against the network's policy; and its
//! offerings' closes, issuances (verified: issued equals allocated, SR-1)
//! and releases — each in its audit log.

use crate::assets::within;
use crate::Tsp;
use sqlx::AnyConnection;
use std::future::Future;
use std::pin::Pin;
use tranche_api::node::BlockRecord;
use tranche_service::audit::Entry;
use tranche_service::follower::Apply;
use tranche_service::{now_ms, ServiceError};
use tranche_types::{Outcome, Payload};

impl Apply for Tsp {
    fn apply<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        block: &'a BlockRecord,
    ) -> Pin<Box<dyn Future<Output = Result<(), ServiceError>> + Send + 'a>> {
        Box::pin(self.apply_block(conn, block))
    }
}

impl Tsp {
    async fn apply_block(
        &self,
        conn: &mut AnyConnection,
        block: &BlockRecord,
    ) -> Result<(), ServiceError> {
        let s = &self.service;
        let ours = s.key.public_key();
        // The block's subscriptions, relayed here or not.
        let mut subscribed = Vec::new();
        for (stx, receipt) in block.block.txs.iter().zip(&block.receipts) {
            let applied = matches!(receipt.outcome, Outcome::Applied);
            let outcome = match &receipt.outcome {
                Outcome::Applied => "applied".to_string(),
                Outcome::Rejected(r) => format!("{}: {}", r.code.name(), r.message),
            };
            let tx = receipt.tx_hash.to_hex();
            if stx.tx.signer == ours {
                self.settle_own(conn, stx.tx.nonce, applied, &outcome, &tx)
                    .await?;
            }
            if let Payload::Subscribe(_) = &stx.tx.payload {
                let result = if applied {
                    Ok(())
                } else {
                    Err(outcome.clone())
                };
                subscribed.push((tx.clone(), result));
            }
            if !applied {
                continue;
            }
            match &stx.tx.payload {
                // A binding on chain never changes: true even if this
                // transaction is rolled back and the block applied again.
                Payload::RegisterWallet(p) => {
                    self.binding_final(p.wallet.to_string(), p.did.to_string())
                        .await;
                }
                Payload::RecordAppraisal(p) => {
                    self.appraised(conn, p.asset.as_str(), p.value.minor.0, &tx)
                        .await?;
                }
                Payload::CloseOffering(p) => {
                    self.offering_moved(conn, p.offering.as_str(), &tx).await?;
                }
                Payload::IssueOffering(p) => {
                    self.offering_moved(conn, p.offering.as_str(), &tx).await?;
                }
                Payload::ReleaseProceeds(p) => {
                    self.offering_moved(conn, p.offering.as_str(), &tx).await?;
                }
                Payload::ExecuteRevocation(p) => {
                    self.verify_revocation(conn, p.request.as_str(), &tx)
                        .await?;
                }
                _ => {}
            }
        }
        Tsp::subscriptions_final(conn, &subscribed, block.height).await?;
        Ok(())
    }

    /// One of the TSP's own transactions is final: what came of it.
    async fn settle_own(
        &self,
        conn: &mut AnyConnection,
        nonce: u64,
        applied: bool,
        outcome: &str,
        tx: &str,
    ) -> Result<(), ServiceError> {
        let (asset, wallet, offering) = if applied {
            ("registered", "bound", "open")
        } else {
            ("refused", "refused", "failed")
        };
        for (table, state, from) in [
            ("tsp_assets", asset, "registering"),
            ("tsp_offerings", offering, "opening"),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE {table} SET state = $1, note = $2, tx = $3, updated_ms = $4
                 WHERE nonce = $5 AND state = $6"
            )))
            .bind(state)
            .bind(outcome.to_string())
            .bind(tx.to_string())
            .bind(now_ms() as i64)
            .bind(nonce as i64)
            .bind(from)
            .execute(&mut *conn)
            .await?;
        }
        let action = if applied { "done" } else { "failed" };
        sqlx::query(
            "UPDATE tsp_actions SET state = CASE
                 WHEN state = 'reclaiming' AND $1 = 'failed' THEN 'funded'
                 WHEN state = 'reclaiming' THEN 'reclaimed'
                 WHEN $1 = 'failed' THEN 'failed'
                 WHEN kind = 'distribution' THEN 'funded' ELSE 'filed' END,
                 note = $2, updated_ms = $3
             WHERE nonce = $4 AND state IN ('sending', 'reclaiming')",
        )
        .bind(action)
        .bind(outcome.to_string())
        .bind(now_ms() as i64)
        .bind(nonce as i64)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "UPDATE tsp_wallets SET state = $1, tx = $2 WHERE nonce = $3 AND state = 'binding'",
        )
        .bind(wallet)
        .bind(tx.to_string())
        .bind(nonce as i64)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// An appraiser valued one of the TSP's assets: checked against the
    /// network's tolerance, on the record.
    async fn appraised(
        &self,
        conn: &mut AnyConnection,
        asset: &str,
        value: u128,
        tx: &str,
    ) -> Result<(), ServiceError> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT price FROM tsp_assets WHERE asset = $1")
                .bind(asset.to_string())
                .fetch_optional(&mut *conn)
                .await?;
        let Some((price,)) = row else {
            return Ok(());
        };
        let price: tranche_types::Money = serde_json::from_str(&price)
            .map_err(|e| ServiceError::internal("an asset's price", e))?;
        let s = &self.service;
        let tolerance = self.tolerance().await?;
        let ok = within(price.minor.0, value, tolerance);
        let note = format!(
            "appraised at {value} against {}: {} the network's {tolerance} bps",
            price.minor.0,
            if ok { "within" } else { "outside" }
        );
        sqlx::query("UPDATE tsp_assets SET state = 'appraised', note = $1, updated_ms = $2 WHERE asset = $3")
            .bind(note.clone())
            .bind(now_ms() as i64)
            .bind(asset.to_string())
            .execute(&mut *conn)
            .await?;
        let e = Entry::by_chain(
            &s.config.org,
            "check_appraisal",
            format!("asset/{asset}"),
            note,
        )
        .with_tx(tx);
        s.decide(conn, None, e).await?;
        Ok(())
    }

    /// One of the TSP's offerings moved on chain: its new standing, and
    /// once it is issued in full the TSP's verification (SR-1).
    async fn offering_moved(
        &self,
        conn: &mut AnyConnection,
        offering: &str,
        tx: &str,
    ) -> Result<(), ServiceError> {
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT state, token FROM tsp_offerings WHERE offering = $1")
                .bind(offering.to_string())
                .fetch_optional(&mut *conn)
                .await?;
        let Some((state, token)) = row else {
            return Ok(());
        };
        if state == "mismatch" {
            // A failed verification stays on record for a person to look at.
            return Ok(());
        }
        let s = &self.service;
        // Every subscription: the check adds up what each was allocated.
        let Some(view) = s
            .node
            .offering_in_full(offering)
            .await
            .map_err(ServiceError::unavailable)?
        else {
            return Ok(());
        };
        let view = view.data;
        let (next, verified) = match view.phase.as_str() {
            "refunded" => ("refunded", None),
            "allocated" => ("allocated", None),
            "issued" | "released"
                if !matches!(state.as_str(), "issued" | "mismatch" | "released") =>
            {
                // SR-1: what the issuer issued is what the close allocated,
                // to the wallets that paid.
                let issued = s
                    .node
                    .token(&token)
                    .await
                    .map_err(ServiceError::unavailable)?
                    .map_or(0, |t| t.data.token.issued.0);
                let allocated: u128 = view.entries.iter().map(|e| e.allocated.0).sum();
                let ok = issued == view.allocated.0 && allocated == view.allocated.0;
                let text = format!(
                    "issued {issued} of {} allocated to {} subscriptions",
                    view.allocated.0, view.subscriptions
                );
                let e = Entry::by_chain(
                    &s.config.org,
                    "verify_issuance",
                    format!("offering/{offering}"),
                    format!("{}: {text}", if ok { "matches" } else { "mismatch" }),
                )
                .with_tx(tx);
                s.decide(conn, None, e).await?;
                (if ok { "issued" } else { "mismatch" }, Some(text))
            }
            "released" => ("released", None),
            _ => return Ok(()),
        };
        let next = if view.phase == "released" && next == "issued" {
            // Issued and released in blocks already past: both on record.
            "released"
        } else {
            next
        };
        if next != state {
            sqlx::query(
                "UPDATE tsp_offerings SET state = $1, verified = COALESCE($2, verified), note = $3, updated_ms = $4
                 WHERE offering = $5",
            )
            .bind(next)
            .bind(verified)
            .bind(format!("{} on chain", view.phase))
            .bind(now_ms() as i64)
            .bind(offering.to_string())
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}
