//! What the exchange makes of each finalized block, in the block's
//! database transaction: listings (a token whose issuance checks out is
//! listed; a pause halts its books, a resumption reopens them, a
//! revocation or expiry delists it), its own transactions' outcomes
//! (wallet bindings, settlements: a settled trade moves the legs kept in
//! the exchange's ledger, a refused one releases both sides' holds), and
//! the movements of traders' wallets.

use crate::market::Effects;
use crate::Exchange;
use sqlx::AnyConnection;
use std::future::Future;
use std::pin::Pin;
use tranche_api::node::BlockRecord;
use tranche_matching::BookStatus;
use tranche_service::db::{params, values};
use tranche_service::follower::Apply;
use tranche_service::ServiceError;
use tranche_types::{Outcome, Payload, TokenId, WalletAddress};

impl Apply for Exchange {
    fn apply<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        block: &'a BlockRecord,
    ) -> Pin<Box<dyn Future<Output = Result<(), ServiceError>> + Send + 'a>> {
        Box::pin(self.apply_block(conn, block))
    }
}

/// A listing change a block causes.
enum Change {
    List(TokenId, String),
    Status(TokenId, BookStatus, String),
}

impl Exchange {
    /// Whether `token`'s issuance is complete by the exchange's own check
    /// (SR-2): issued equals what the request (or offering) asked, nothing
    /// revoked. The reason to list it, if so.
    async fn issuance_complete(&self, token: &TokenId) -> Result<Option<String>, ServiceError> {
        let node = &self.service.node;
        let Some(t) = node
            .token(token.as_str())
            .await
            .map_err(ServiceError::unavailable)?
        else {
            return Ok(None);
        };
        let t = t.data.token;
        let Some(request) = t.request.clone() else {
            return Ok(None);
        };
        if !t.revoked.is_zero() {
            return Ok(None);
        }
        if let Some(i) = node
            .issuance(request.as_str())
            .await
            .map_err(ServiceError::unavailable)?
        {
            if let Some(c) = i.data.check {
                let done = c.executed && c.issued == Some(c.requested) && t.issued == c.requested;
                return Ok(done.then(|| {
                    format!(
                        "issued {} of {} requested ({request})",
                        t.issued, c.requested
                    )
                }));
            }
        }
        if let Some(o) = node
            .offering(request.as_str())
            .await
            .map_err(ServiceError::unavailable)?
        {
            let o = o.data;
            let done = matches!(o.phase.as_str(), "issued" | "released") && t.issued == o.allocated;
            return Ok(done.then(|| {
                format!(
                    "issued {} of {} allocated ({request})",
                    t.issued, o.allocated
                )
            }));
        }
        Ok(None)
    }

    async fn apply_block(
        &self,
        conn: &mut AnyConnection,
        block: &BlockRecord,
    ) -> Result<(), ServiceError> {
        let ours = self.service.key.public_key();
        let height = block.height;
        let date = block.block.header.time.date();
        // What needs the node is asked before the market is taken.
        let mut changes: Vec<(Change, Option<String>)> = Vec::new();
        let mut bindings: Vec<(i64, bool, String)> = Vec::new();
        let mut settlements: Vec<(i64, Option<(String, String)>)> = Vec::new();
        let mut policies = Vec::new();
        for (stx, receipt) in block.block.txs.iter().zip(&block.receipts) {
            let tx = Some(receipt.tx_hash.to_hex());
            if stx.tx.signer == ours {
                let rejection = match &receipt.outcome {
                    Outcome::Applied => None,
                    Outcome::Rejected(r) => Some((r.code.name().to_string(), r.message.clone())),
                };
                match &stx.tx.payload {
                    Payload::RegisterWallet(_) => bindings.push((
                        stx.tx.nonce as i64,
                        rejection.is_none(),
                        rejection.map_or_else(|| "applied".into(), |r| r.0),
                    )),
                    Payload::Settle(_) => settlements.push((stx.tx.nonce as i64, rejection)),
                    _ => {}
                }
            }
            if !matches!(receipt.outcome, Outcome::Applied) {
                continue;
            }
            match &stx.tx.payload {
                Payload::PublishAmlPolicy(p) => {
                    policies.push((p.version, p.effective_height, p.policy.clone(), tx));
                }
                Payload::ExecuteIssuance(p) => {
                    if let Some(i) = self
                        .service
                        .node
                        .issuance(p.request.as_str())
                        .await
                        .map_err(ServiceError::unavailable)?
                    {
                        let token = i.data.request.terms.token.clone();
                        if let Some(why) = self.issuance_complete(&token).await? {
                            changes.push((Change::List(token, why), tx));
                        }
                    }
                }
                Payload::IssueOffering(p) => {
                    if let Some(o) = self
                        .service
                        .node
                        .offering(p.offering.as_str())
                        .await
                        .map_err(ServiceError::unavailable)?
                    {
                        let token = o.data.terms.token.clone();
                        if let Some(why) = self.issuance_complete(&token).await? {
                            changes.push((Change::List(token, why), tx));
                        }
                    }
                }
                Payload::SetPaused(p) => {
                    let (status, why) = if p.paused {
                        (BookStatus::Halted, "paused by its agent")
                    } else {
                        (BookStatus::Open, "resumed by its agent")
                    };
                    changes.push((Change::Status(p.token.clone(), status, why.into()), tx));
                }
                Payload::ExecuteRevocation(p) => {
                    // Its token is delisted once it is revoked for good.
                    let node = &self.service.node;
                    let revocation = node
                        .revocation(p.request.as_str())
                        .await
                        .map_err(ServiceError::unavailable)?;
                    if let Some(r) = revocation {
                        let token = r.data.request.token;
                        let t = node
                            .token(token.as_str())
                            .await
                            .map_err(ServiceError::unavailable)?;
                        if t.and_then(|t| t.data.supply)
                            .is_some_and(|s| s.revoked_for_good)
                        {
                            changes.push((
                                Change::Status(token, BookStatus::Delisted, "revoked".into()),
                                tx,
                            ));
                        }
                    }
                }
                _ => {}
            }
        }
        let expired: Vec<TokenId> = {
            let m = self.market();
            m.expiries
                .iter()
                .filter(|(t, d)| {
                    **d < date && m.listings.get(*t).is_some_and(|l| l.status != "delisted")
                })
                .map(|(t, _)| t.clone())
                .collect()
        };
        for t in expired {
            changes.push((
                Change::Status(t, BookStatus::Delisted, "expired".into()),
                None,
            ));
        }
        let mut expiries = Vec::new();
        for (c, _) in &changes {
            if let Change::List(token, _) = c {
                let t = self
                    .service
                    .node
                    .token(token.as_str())
                    .await
                    .map_err(ServiceError::unavailable)?;
                if let Some(d) = t.and_then(|t| t.data.token.expiry_date) {
                    expiries.push((token.clone(), d));
                }
            }
        }
        // Which trades the settlements are.
        let mut trades: Vec<(i64, i64)> = Vec::new();
        for chunk in settlements.chunks(200) {
            let mut q = sqlx::query_as::<_, (i64, i64)>(sqlx::AssertSqlSafe(format!(
                "SELECT id, nonce FROM ex_trades WHERE nonce IN ({}) AND state = 'settling'",
                params(conn, 1, chunk.len())
            )));
            for (n, _) in chunk {
                q = q.bind(*n);
            }
            trades.extend(q.fetch_all(&mut *conn).await?);
        }
        // Every movement touching a trader's wallet, with both sides' DIDs
        // (the other side's from the node), for the regulator (F6-8).
        let touching: Vec<(usize, Option<String>, Option<String>)> = {
            let m = self.market();
            block
                .transfers
                .iter()
                .enumerate()
                .filter_map(|(i, t)| {
                    let from = t.from.and_then(|w| m.wallets.get(&w).cloned());
                    let to = m.wallets.get(&t.to).cloned();
                    (from.is_some() || to.is_some()).then_some((i, from, to))
                })
                .collect()
        };
        let mut others: std::collections::HashMap<WalletAddress, Option<String>> =
            std::collections::HashMap::new();
        let mut moves = Vec::with_capacity(touching.len());
        for (i, from_did, to_did) in touching {
            let t = &block.transfers[i];
            let mut did_of = async |w: WalletAddress, known: Option<String>| {
                if known.is_some() {
                    return Ok::<_, ServiceError>(known);
                }
                if let Some(d) = others.get(&w) {
                    return Ok(d.clone());
                }
                let d = self
                    .service
                    .node
                    .wallet(&w)
                    .await
                    .map_err(ServiceError::unavailable)?
                    .data
                    .did
                    .map(|d| d.to_string());
                others.insert(w, d.clone());
                Ok(d)
            };
            let from_did = match t.from {
                Some(w) => did_of(w, from_did).await?,
                None => None,
            };
            let to_did = did_of(t.to, to_did).await?;
            moves.push((i, from_did, to_did));
        }
        for chunk in moves.chunks(40) {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO ex_moves (height, idx, tx, token, from_wallet, from_did, to_wallet,
                     to_did, amount, kind) VALUES {}",
                values(&*conn, chunk.len(), 10)
            )));
            for (i, from_did, to_did) in chunk {
                let t = &block.transfers[*i];
                q = q
                    .bind(height as i64)
                    .bind(*i as i64)
                    .bind(t.tx.to_hex())
                    .bind(t.token.to_string())
                    .bind(t.from.map(|w| w.to_string()))
                    .bind(from_did.clone())
                    .bind(t.to.to_string())
                    .bind(to_did.clone())
                    .bind(t.amount.to_string())
                    .bind(tranche_api::report::kind_name(t.kind));
            }
            q.execute(&mut *conn).await?;
        }
        // The market, in memory, then the same in the block's transaction.
        let mut fx = Effects::default();
        let mut balances: Vec<(WalletAddress, TokenId, u128)> = Vec::new();
        {
            let mut m = self.market();
            if m.applied_height >= height {
                // An earlier attempt at this block changed the market and
                // then failed to commit: the market is ahead of the
                // database. Starting again rebuilds it from the database.
                crate::fatal("a block's effects were applied to the books but not written");
            }
            m.applied_height = height;
            for (version, from, policy, tx) in policies {
                fx.audit.push(tranche_service::audit::Entry {
                    actor: self.service.config.org.clone(),
                    authority: "chain".into(),
                    action: "aml_policy".into(),
                    subject: format!("aml-policy/{version}"),
                    decision: format!("enforced from block {from}"),
                    reason: None,
                    tx,
                });
                m.aml.insert(version, (from, policy));
            }
            // A version governing from the next block: the resting orders
            // of the identities it bars are cancelled now (F6-1).
            if m.aml.values().any(|(from, _)| *from == height + 1) {
                m.cancel_barred(&mut fx);
            }
            for (token, d) in expiries {
                m.expiries.insert(token, d);
            }
            for t in &block.transfers {
                if let Some(from) = t.from {
                    if let Some(after) = m.moved(from, &t.token, t.amount.0, false) {
                        balances.push((from, t.token.clone(), after));
                    }
                }
                if let Some(after) = m.moved(t.to, &t.token, t.amount.0, true) {
                    balances.push((t.to, t.token.clone(), after));
                }
            }
            for (id, nonce) in &trades {
                let applied = settlements
                    .iter()
                    .find(|(n, _)| n == nonce)
                    .is_some_and(|(_, r)| r.is_none());
                m.settled(*id as u64, applied, &mut fx);
            }
            for (c, tx) in changes {
                match c {
                    Change::List(token, why) => m.list(&token, why, height, tx, &mut fx),
                    Change::Status(token, status, why) => {
                        m.set_status(&token, status, &why, height, tx, &mut fx)
                    }
                }
            }
        }
        // Balances: the last value of each wallet and token.
        balances.reverse();
        let mut seen = std::collections::BTreeSet::new();
        balances.retain(|(w, t, _)| seen.insert((*w, t.clone())));
        for chunk in balances.chunks(50) {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO ex_wallet_balances (wallet, token, units) VALUES {}
                 ON CONFLICT (wallet, token) DO UPDATE SET units = excluded.units",
                values(&*conn, chunk.len(), 3)
            )));
            for (w, t, u) in chunk {
                q = q
                    .bind(w.to_string())
                    .bind(t.to_string())
                    .bind(u.to_string());
            }
            q.execute(&mut *conn).await?;
        }
        for (nonce, ok, outcome) in &bindings {
            sqlx::query("UPDATE ex_traders SET state = $1, outcome = $2 WHERE nonce = $3 AND state = 'binding'")
                .bind(if *ok { "active" } else { "failed" })
                .bind(outcome.clone())
                .bind(*nonce)
                .execute(&mut *conn)
                .await?;
        }
        if bindings.iter().any(|(_, ok, _)| *ok) {
            let dids: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT did FROM ex_traders WHERE state = 'active' AND nonce IN ({})",
                bindings
                    .iter()
                    .map(|(n, _, _)| n.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
            .fetch_all(&mut *conn)
            .await?;
            let mut m = self.market();
            for (d,) in dids {
                if let Some(t) = m.traders.get_mut(&d) {
                    t.active = true;
                }
            }
        }
        for (id, nonce) in &trades {
            let rejection = settlements
                .iter()
                .find(|(n, _)| n == nonce)
                .and_then(|(_, r)| r.clone());
            let (state, reason, message) = match rejection {
                None => ("settled", None, None),
                Some((code, message)) => ("failed", Some(code), Some(message)),
            };
            sqlx::query("UPDATE ex_trades SET state = $1, height = $2, reason = $3, message = $4, decided_ms = $5 WHERE id = $6")
                .bind(state)
                .bind(height as i64)
                .bind(reason)
                .bind(message)
                .bind(block.block.header.time.0 as i64)
                .bind(*id)
                .execute(&mut *conn)
                .await?;
        }
        let touched = crate::ws::Touched::of(&fx, self.listening());
        fx.write(self, conn).await?;
        // Published before the kit commits the block: a failed commit stops
        // the service (the market would be ahead of the database).
        self.publish(touched);
        Ok(())
    }
}
