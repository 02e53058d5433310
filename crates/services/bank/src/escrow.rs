//! What the bank takes from each finalized block, in the follower's
//! transaction: the offerings that escrow with it, and what the ledger now
//! permits for each (close it in batches once its window has ended —
//! refunding everyone below the soft cap — and release the proceeds to the
//! owner once it is issued in full); the outcome of its mintings; the
//! redemptions it owes money for.
//!
//! One transaction per offering is in flight at a time, known by its nonce
//! (which survives the outbox signing an expired one again); the next step
//! is decided from the chain's view of the offering once it is final.

use crate::accounts::account;
use crate::Bank;
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use std::future::Future;
use std::pin::Pin;
use tranche_api::node::BlockRecord;
use tranche_service::audit::Entry;
use tranche_service::follower::Apply;
use tranche_service::{now_ms, ServiceError};
use tranche_types::{
    CloseOffering, Outcome, Payload, ReleaseProceeds, RequestId, WalletAddress, OFFERING_BATCH_MAX,
};

/// An offering escrowed with this bank, as the bank handles it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OfferingState {
    /// The offering.
    pub offering: String,
    /// Its asset.
    pub asset: String,
    /// When its subscription window ends, ms since 1970 (block time).
    pub closes_ms: u64,
    /// `open`, `closing`, `allocated` (waiting for the issuer),
    /// `awaiting_owner` (issued; the owner holds no account here yet),
    /// `releasing`, `released`, `refunded`, or `release_failed` (the chain
    /// refused the release: a person looks).
    pub state: String,
    /// Close transactions sent.
    pub batches: u64,
    /// The release transaction, once sent.
    pub release_tx: Option<String>,
    /// The last thing that happened, for a person.
    pub note: String,
}

impl Apply for Bank {
    fn apply<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        block: &'a BlockRecord,
    ) -> Pin<Box<dyn Future<Output = Result<(), ServiceError>> + Send + 'a>> {
        Box::pin(self.apply_block(conn, block))
    }
}

/// A row of `bank_offerings` as [`offerings`] reads it.
type OfferingRow = (String, String, i64, String, i64, Option<String>, String);

pub(crate) async fn offerings(conn: &mut AnyConnection) -> Result<Vec<OfferingState>, sqlx::Error> {
    let rows: Vec<OfferingRow> = sqlx::query_as(
        "SELECT offering, asset, closes_ms, state, batches, release_tx, note
         FROM bank_offerings ORDER BY closes_ms, offering LIMIT 1000",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| OfferingState {
            offering: r.0,
            asset: r.1,
            closes_ms: r.2 as u64,
            state: r.3,
            batches: r.4 as u64,
            release_tx: r.5,
            note: r.6,
        })
        .collect())
}

impl Bank {
    async fn apply_block(
        &self,
        conn: &mut AnyConnection,
        block: &BlockRecord,
    ) -> Result<(), ServiceError> {
        let s = &self.service;
        let org = s.config.org.clone();
        let ours = s.key.public_key();
        let height = block.height;
        let mut touched: Vec<String> = Vec::new();
        for (stx, receipt) in block.block.txs.iter().zip(&block.receipts) {
            let applied = matches!(receipt.outcome, Outcome::Applied);
            let outcome = match &receipt.outcome {
                Outcome::Applied => "applied".to_string(),
                Outcome::Rejected(r) => r.code.name().to_string(),
            };
            let tx = receipt.tx_hash.to_hex();
            if stx.tx.signer == ours {
                // One of ours: a minting, or an offering's step, final now.
                let nonce = stx.tx.nonce as i64;
                let state = if applied { "minted" } else { "failed" };
                sqlx::query(
                    "UPDATE bank_deposits SET state = $1, outcome = $2, height = $3, tx = $4
                     WHERE nonce = $5",
                )
                .bind(state)
                .bind(outcome.clone())
                .bind(height as i64)
                .bind(tx.clone())
                .bind(nonce)
                .execute(&mut *conn)
                .await?;
                let stepped: Option<(String,)> =
                    sqlx::query_as("SELECT offering FROM bank_offerings WHERE pending_nonce = $1")
                        .bind(nonce)
                        .fetch_optional(&mut *conn)
                        .await?;
                if let Some((offering,)) = stepped {
                    sqlx::query(
                        "UPDATE bank_offerings SET pending_nonce = NULL, note = $1 WHERE offering = $2",
                    )
                    .bind(format!("{} at height {height}: {outcome}", kind(&stx.tx.payload)))
                    .bind(offering.clone())
                    .execute(&mut *conn)
                    .await?;
                    touched.push(offering);
                }
            }
            if !applied {
                continue;
            }
            match &stx.tx.payload {
                Payload::OpenOffering(p) if p.bank.as_str() == org => {
                    sqlx::query(
                        "INSERT INTO bank_offerings (offering, asset, closes_ms, state, batches, note, updated_ms)
                         VALUES ($1, $2, $3, 'open', 0, $4, $5) ON CONFLICT (offering) DO NOTHING",
                    )
                    .bind(p.offering.to_string())
                    .bind(p.asset.to_string())
                    .bind(p.closes.0 as i64)
                    .bind(format!("opened at height {height}"))
                    .bind(now_ms() as i64)
                    .execute(&mut *conn)
                    .await?;
                    let e = Entry::by_chain(
                        &org,
                        "escrow",
                        format!("offering/{}", p.offering),
                        format!("escrows {} until {}", p.cash_token, p.closes.0),
                    );
                    s.decide(conn, None, e.with_tx(&tx)).await?;
                }
                Payload::CloseOffering(CloseOffering { offering, .. })
                | Payload::ReleaseProceeds(ReleaseProceeds { offering, .. }) => {
                    touched.push(offering.to_string());
                }
                Payload::IssueOffering(p) => touched.push(p.offering.to_string()),
                Payload::RedeemCash(p) if p.token == self.token => {
                    self.owe(conn, stx.tx.signer.address(), p.amount, &tx, height)
                        .await?;
                }
                _ => {}
            }
        }
        // Windows that ended with this block.
        let due: Vec<(String,)> = sqlx::query_as(
            "SELECT offering FROM bank_offerings WHERE state = 'open' AND closes_ms <= $1",
        )
        .bind(block.block.header.time.0 as i64)
        .fetch_all(&mut *conn)
        .await?;
        touched.extend(due.into_iter().map(|(o,)| o));
        touched.sort();
        touched.dedup();
        for offering in touched {
            self.advance(conn, &offering, block.block.header.time.0)
                .await?;
        }
        // What waits for a person or the chain, for the operators' dashboards.
        for (queue, sql) in [
            (
                "payouts_owed",
                "SELECT COUNT(*) FROM bank_payouts WHERE state = 'owed'",
            ),
            (
                "escrows_open",
                "SELECT COUNT(*) FROM bank_offerings WHERE state NOT IN ('released', 'refunded')",
            ),
        ] {
            let (n,): (i64,) = sqlx::query_as(sql).fetch_one(&mut *conn).await?;
            s.metrics.queue(queue, usize::try_from(n).unwrap_or(0));
        }
        Ok(())
    }

    /// Notes the money owed for `amount` deposit tokens `wallet` redeemed.
    async fn owe(
        &self,
        conn: &mut AnyConnection,
        wallet: WalletAddress,
        amount: tranche_types::Units,
        tx: &str,
        height: u64,
    ) -> Result<(), ServiceError> {
        let did = self
            .service
            .node
            .wallet(&wallet)
            .await
            .map_err(ServiceError::unavailable)?
            .data
            .did
            .map(|d| d.to_string())
            .unwrap_or_default();
        sqlx::query(
            "INSERT INTO bank_payouts (tx, did, wallet, amount, height, state)
             VALUES ($1, $2, $3, $4, $5, 'owed') ON CONFLICT (tx) DO NOTHING",
        )
        .bind(tx.to_string())
        .bind(did.clone())
        .bind(wallet.to_string())
        .bind(amount.to_string())
        .bind(height as i64)
        .execute(&mut *conn)
        .await?;
        let e = Entry {
            actor: did.clone(),
            authority: "chain".into(),
            action: "redeem".into(),
            subject: format!("{did}/{tx}"),
            decision: format!("owed {amount} {}", self.currency.code()),
            reason: None,
            tx: Some(tx.to_string()),
        };
        self.service.decide(conn, None, e).await?;
        Ok(())
    }

    /// Takes the next step the ledger permits for `offering`, unless one is
    /// in flight: decided from the chain's view of it.
    async fn advance(
        &self,
        conn: &mut AnyConnection,
        offering: &str,
        block_ms: u64,
    ) -> Result<(), ServiceError> {
        let row: Option<(String, String, i64, Option<i64>, i64)> = sqlx::query_as(
            "SELECT state, asset, closes_ms, pending_nonce, batches FROM bank_offerings WHERE offering = $1",
        )
        .bind(offering.to_string())
        .fetch_optional(&mut *conn)
        .await?;
        let Some((state, asset, closes_ms, pending, batches)) = row else {
            return Ok(());
        };
        if pending.is_some() || matches!(state.as_str(), "released" | "refunded" | "release_failed")
        {
            return Ok(());
        }
        if block_ms < closes_ms as u64 {
            return Ok(());
        }
        let s = &self.service;
        let org = s.config.org.clone();
        let view = s
            .node
            .offering(offering)
            .await
            .map_err(ServiceError::unavailable)?
            .ok_or_else(|| ServiceError::internal("an escrowed offering", offering))?
            .data;
        let id: RequestId = offering
            .parse()
            .map_err(|_| ServiceError::internal("an offering id", offering))?;
        let subject = format!("offering/{offering}");
        match view.phase.as_str() {
            "open" | "refunding" | "allocating" => {
                let refunding = view.phase == "refunding"
                    || (view.phase == "open" && view.subscribed < view.terms.soft_cap);
                let decision = if refunding {
                    format!(
                        "close from batch {}: {} subscribed, below the soft cap of {}; refunding",
                        batches + 1,
                        view.subscribed,
                        view.terms.soft_cap
                    )
                } else {
                    format!(
                        "close from batch {}: {} subscribed for {}; allocating",
                        batches + 1,
                        view.subscribed,
                        view.terms.amount
                    )
                };
                // From the start, every batch the subscriptions need goes
                // at once, in nonce order: the ledger walks them in turn,
                // so the close takes a block or two, not a block a batch.
                // A close resumed midway goes one batch at a time.
                let group = if view.phase == "open" {
                    tranche_service::outbox::batches(view.subscriptions, OFFERING_BATCH_MAX)
                } else {
                    1
                };
                let payloads = (0..group)
                    .map(|_| {
                        Payload::CloseOffering(CloseOffering {
                            offering: id.clone(),
                            max: OFFERING_BATCH_MAX,
                        })
                    })
                    .collect();
                let e = Entry::by_chain(&org, "close", subject, decision);
                let (last, _) = s.decide_txs(conn, payloads, e).await?;
                self.set(
                    conn,
                    offering,
                    "closing",
                    Some(last),
                    batches + group as i64,
                    None,
                )
                .await?;
            }
            "refunded" => {
                self.settle(conn, offering, &state, "refunded", "everyone refunded")
                    .await?;
            }
            "allocated" => {
                self.settle(
                    conn,
                    offering,
                    &state,
                    "allocated",
                    &format!("{} allocated; waiting for the issuer", view.allocated),
                )
                .await?;
            }
            "issued" if state == "releasing" => {
                // Our release was final and the chain still holds the
                // proceeds: it refused it. A person looks before we try again.
                self.settle(
                    conn,
                    offering,
                    &state,
                    "release_failed",
                    "the chain refused the release; see the audit log for its outcome",
                )
                .await?;
            }
            "issued" => {
                let owner = s
                    .node
                    .asset(&asset)
                    .await
                    .map_err(ServiceError::unavailable)?
                    .ok_or_else(|| ServiceError::internal("an offering's asset", &asset))?
                    .data
                    .owner;
                match account(conn, owner.as_str()).await? {
                    Some(a) => {
                        let to: WalletAddress = a.wallet.parse().map_err(|_| {
                            ServiceError::internal("an account's wallet", &a.wallet)
                        })?;
                        self.release(conn, offering, id, to, batches).await?;
                    }
                    None => {
                        self.settle(
                            conn,
                            offering,
                            &state,
                            "awaiting_owner",
                            &format!("issued in full; the owner {owner} holds no account here to be paid into"),
                        )
                        .await?;
                    }
                }
            }
            "released" => {
                self.settle(
                    conn,
                    offering,
                    &state,
                    "released",
                    "proceeds released to the owner",
                )
                .await?;
            }
            other => {
                return Err(ServiceError::internal("an offering's phase", other));
            }
        }
        Ok(())
    }

    /// Records the release of `offering`'s proceeds to the owner's `to`.
    async fn release(
        &self,
        conn: &mut AnyConnection,
        offering: &str,
        id: RequestId,
        to: WalletAddress,
        batches: i64,
    ) -> Result<(), ServiceError> {
        let s = &self.service;
        let payload = Payload::ReleaseProceeds(ReleaseProceeds { offering: id, to });
        let e = Entry::by_chain(
            &s.config.org,
            "release",
            format!("offering/{offering}"),
            format!("issued in full (SR-1): proceeds to the owner's wallet {to}"),
        );
        let (nonce, hash) = s.decide_tx(conn, payload, e).await?;
        self.set(
            conn,
            offering,
            "releasing",
            Some(nonce),
            batches,
            Some(hash.to_hex()),
        )
        .await
    }

    /// Releases every offering that waited for `owner`'s account, now
    /// opened for `wallet`.
    pub(crate) async fn release_awaiting(
        &self,
        conn: &mut AnyConnection,
        owner: &str,
        wallet: &WalletAddress,
    ) -> Result<(), ServiceError> {
        let waiting: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT offering, asset, batches FROM bank_offerings WHERE state = 'awaiting_owner' AND pending_nonce IS NULL",
        )
        .fetch_all(&mut *conn)
        .await?;
        for (offering, asset, batches) in waiting {
            let a = self
                .service
                .node
                .asset(&asset)
                .await
                .map_err(ServiceError::unavailable)?
                .ok_or_else(|| ServiceError::internal("an offering's asset", &asset))?;
            if a.data.owner.as_str() == owner {
                let id: RequestId = offering
                    .parse()
                    .map_err(|_| ServiceError::internal("an offering id", &offering))?;
                self.release(conn, &offering, id, *wallet, batches).await?;
            }
        }
        Ok(())
    }

    async fn set(
        &self,
        conn: &mut AnyConnection,
        offering: &str,
        state: &str,
        pending: Option<u64>,
        batches: i64,
        release_tx: Option<String>,
    ) -> Result<(), ServiceError> {
        sqlx::query(
            "UPDATE bank_offerings SET state = $1, pending_nonce = $2, batches = $3,
             release_tx = COALESCE($4, release_tx), updated_ms = $5 WHERE offering = $6",
        )
        .bind(state.to_string())
        .bind(pending.map(|n| n as i64))
        .bind(batches)
        .bind(release_tx)
        .bind(now_ms() as i64)
        .bind(offering.to_string())
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Moves `offering` to `to` with `note`, in the audit log once.
    async fn settle(
        &self,
        conn: &mut AnyConnection,
        offering: &str,
        from: &str,
        to: &str,
        note: &str,
    ) -> Result<(), ServiceError> {
        if from == to {
            return Ok(());
        }
        sqlx::query(
            "UPDATE bank_offerings SET state = $1, note = $2, updated_ms = $3 WHERE offering = $4",
        )
        .bind(to.to_string())
        .bind(note.to_string())
        .bind(now_ms() as i64)
        .bind(offering.to_string())
        .execute(&mut *conn)
        .await?;
        let s = &self.service;
        let e = Entry::by_chain(
            &s.config.org,
            to,
            format!("offering/{offering}"),
            note.into(),
        );
        s.decide(conn, None, e).await?;
        Ok(())
    }
}

fn kind(p: &Payload) -> &'static str {
    match p {
        Payload::CloseOffering(_) => "close",
        Payload::ReleaseProceeds(_) => "release",
        _ => "step",
    }
}
