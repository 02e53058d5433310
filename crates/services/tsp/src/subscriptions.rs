//! Subscriptions relayed (F5-6, REC-5): an investor hands the TSP the
//! `subscribe` transaction they signed offline with their own key; the TSP
//! checks that it is theirs — signed by a wallet the chain binds to the
//! session's DID, for an offering this TSP opened, on this chain — records
//! it, and forwards it to its node.
//!
//! Many investors subscribe at once when an offering opens, so the relay
//! takes what has arrived together: one database transaction records the
//! lot and one node batch carries it (a group commit), instead of a commit
//! and a request each. A subscription answered as received is recorded,
//! and what was recorded and not yet seen final is sent again when the
//! service starts, so a crash loses none; the chain takes a transaction at
//! most once, so a retry doubles none.

use crate::assets::refuse;
use crate::Tsp;
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, RwLock};
use tranche_api::client::NodeClient;
use tranche_api::{ErrorCode, BATCH_TXS_MAX};
use tranche_service::auth::Principal;
use tranche_service::db::params;
use tranche_service::{now_ms, Db, ServiceCode, ServiceError};
use tranche_types::{ChainId, Payload, SignedTransaction};

/// Subscriptions waiting for the relay; past this, callers are told to
/// come back shortly rather than queue without bound.
pub const QUEUED_MAX: usize = 10_000;
/// Recorded lots being sent to the node at once.
const LOTS_IN_FLIGHT: usize = 4;
/// How often, and after how long, a recorded subscription not yet seen
/// final is sent again.
const RESEND_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// A subscription as the TSP relayed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SubscriptionView {
    /// The transaction's id on chain.
    pub tx: String,
    /// The offering.
    pub offering: String,
    /// The investor's DID.
    pub did: String,
    /// The paying wallet.
    pub wallet: String,
    /// Units subscribed.
    pub units: String,
    /// `sent` (with the node, not yet final), `applied`, `rejected` (by the
    /// ledger: see `outcome`), or `refused` (by the node: see `outcome`).
    pub state: String,
    /// What the chain or the node said.
    pub outcome: Option<String>,
    /// The block that holds it, once final.
    pub height: Option<u64>,
}

/// One subscription handed to the relay, and where its answer goes.
struct Item {
    stx: SignedTransaction,
    view: SubscriptionView,
    reply: oneshot::Sender<Result<SubscriptionView, ServiceError>>,
}

/// Wallet bindings the relay remembers; past this it forgets them all and
/// starts again.
pub const BINDINGS_REMEMBERED: usize = 1_000_000;

/// The relay's queue, and what it learnt that does not change.
#[derive(Debug, Clone)]
pub(crate) struct Relay {
    queue: mpsc::Sender<Item>,
    known: Arc<Known>,
}

/// Facts that, once true, stay true: offerings opened here, wallets bound
/// to a DID.
#[derive(Debug, Default)]
struct Known {
    offerings: RwLock<HashSet<String>>,
    bindings: RwLock<HashMap<String, String>>,
}

impl std::fmt::Debug for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Item").field("tx", &self.view.tx).finish()
    }
}

impl Relay {
    /// Starts the relay for `db` and `node`: first what an earlier run
    /// recorded and had not seen final, then what arrives.
    pub(crate) fn start(db: Db, node: NodeClient, chain: ChainId) -> Relay {
        let (queue, mut arrived) = mpsc::channel::<Item>(QUEUED_MAX);
        tokio::spawn(async move {
            if let Err(e) = resend_recorded(&db, &node, now_ms()).await {
                tracing::warn!(error = %e, "resending recorded subscriptions");
            }
            // Lots are recorded one after another (the write turn is one
            // anyway) and sent while the next is recorded, a few at a time.
            let sending = Arc::new(tokio::sync::Semaphore::new(LOTS_IN_FLIGHT));
            let mut lot = Vec::with_capacity(BATCH_TXS_MAX);
            // Now and then, what the node did not take when it was sent
            // (unreachable, or dropped from its mempool) goes again.
            let mut again = tokio::time::interval(RESEND_EVERY);
            again.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let taken = tokio::select! {
                    n = arrived.recv_many(&mut lot, BATCH_TXS_MAX) => n,
                    _ = again.tick() => {
                        let before = now_ms().saturating_sub(RESEND_EVERY.as_millis() as u64);
                        if let Err(e) = resend_recorded(&db, &node, before).await {
                            tracing::warn!(error = %e, "resending recorded subscriptions");
                        }
                        continue;
                    }
                };
                if taken == 0 {
                    return;
                }
                let Some(recorded) = check_and_record(&db, &chain, std::mem::take(&mut lot)).await
                else {
                    continue;
                };
                let Ok(permit) = Arc::clone(&sending).acquire_owned().await else {
                    return;
                };
                let (db, node) = (db.clone(), node.clone());
                tokio::spawn(async move {
                    send(&db, &node, recorded).await;
                    drop(permit);
                });
            }
        });
        Relay {
            queue,
            known: Arc::default(),
        }
    }
}

/// Checks the signatures of `lot` together and records the good ones in one
/// transaction; answers the others. `None` if nothing is left to send.
async fn check_and_record(db: &Db, chain: &ChainId, lot: Vec<Item>) -> Option<Vec<Item>> {
    let lot = signed_by_their_signers(chain, lot);
    if lot.is_empty() {
        return None;
    }
    if let Err(e) = record(db, &lot).await {
        for item in lot {
            let _ = item.reply.send(Err(e.clone()));
        }
        return None;
    }
    Some(lot)
}

/// Forwards a recorded `lot` in one node batch and answers each caller.
async fn send(db: &Db, node: &NodeClient, lot: Vec<Item>) {
    let txs: Vec<SignedTransaction> = lot.iter().map(|i| i.stx.clone()).collect();
    let answer = match node.submit_batch(&txs).await {
        Ok(a) => a.results,
        Err(e) => {
            // Recorded: sent again on the next start, or when the investor
            // retries. The caller hears it is received, not that it failed.
            tracing::warn!(error = %e, n = lot.len(), "the node did not take relayed subscriptions");
            for item in lot {
                let _ = item.reply.send(Ok(item.view));
            }
            return;
        }
    };
    let mut refused = Vec::new();
    for (item, result) in lot.into_iter().zip(answer) {
        match result.error {
            // Held or final already: a retry of one the node has.
            Some(body) if !matches!(body.code, ErrorCode::NonceTaken | ErrorCode::NonceUsed) => {
                refused.push((item.view.tx.clone(), body.code.name()));
                let code = match body.code {
                    ErrorCode::MempoolFull => ServiceCode::NodeUnavailable,
                    _ => ServiceCode::Conflict,
                };
                let _ = item.reply.send(Err(refuse(
                    code,
                    format!("the node refused the subscription: {}", body.message),
                )));
            }
            _ => {
                let _ = item.reply.send(Ok(item.view));
            }
        }
    }
    if !refused.is_empty() {
        if let Err(e) = mark_refused(db, &refused).await {
            tracing::warn!(error = %e, "noting refused subscriptions");
        }
    }
}

/// The items of `lot` whose signatures verify; the others are answered
/// here. One batch verification for the lot (cheaper per signature than
/// one by one), and one by one only if the batch fails, to find which.
fn signed_by_their_signers(chain: &ChainId, lot: Vec<Item>) -> Vec<Item> {
    let all = tranche_crypto::verify_transactions_batch(
        lot.iter().map(|i| &i.stx),
        chain,
        tranche_crypto::os_rng(),
    );
    if all.is_ok() {
        return lot;
    }
    lot.into_iter()
        .filter_map(
            |item| match tranche_crypto::verify_transaction(&item.stx, chain) {
                Ok(()) => Some(item),
                Err(e) => {
                    let _ = item.reply.send(Err(refuse(
                        ServiceCode::BadRequest,
                        format!("the transaction does not verify: {e}"),
                    )));
                    None
                }
            },
        )
        .collect()
}

/// Rows one statement writes: SQLite looks a statement's parameters up by
/// name one by one, so a few dozen rows a statement cost less than hundreds.
const ROWS_PER_INSERT: usize = 50;

/// Records `lot` in one transaction, a few hundred rows a statement.
async fn record(db: &Db, lot: &[Item]) -> Result<(), ServiceError> {
    let now = now_ms() as i64;
    // The same transaction twice in one lot (a caller's quick retry) is
    // one row.
    let mut seen = HashSet::new();
    let rows: Vec<&Item> = lot
        .iter()
        .filter(|i| seen.insert(i.view.tx.as_str()))
        .collect();
    let mut w = db.write().await?;
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        // A refused one handed in again is sent again.
        let sql = format!(
            "INSERT INTO tsp_subscriptions (tx, offering, did, wallet, units, signed, state, received_ms)
             VALUES {}
             ON CONFLICT (tx) DO UPDATE SET state = 'sent', outcome = NULL
             WHERE tsp_subscriptions.state = 'refused'",
            tranche_service::db::values(&w.tx, chunk.len(), 8)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for item in chunk {
            let v = &item.view;
            q = q
                .bind(v.tx.clone())
                .bind(v.offering.clone())
                .bind(v.did.clone())
                .bind(v.wallet.clone())
                .bind(v.units.clone())
                .bind(hex_of(&item.stx))
                .bind("sent")
                .bind(now);
        }
        q.execute(&mut *w.tx).await?;
    }
    w.commit().await?;
    Ok(())
}

async fn mark_refused(db: &Db, refused: &[(String, &str)]) -> Result<(), sqlx::Error> {
    let mut w = db.write().await?;
    for (tx, code) in refused {
        sqlx::query(
            "UPDATE tsp_subscriptions SET state = 'refused', outcome = $1 WHERE tx = $2 AND state = 'sent'",
        )
        .bind(code.to_string())
        .bind(tx.clone())
        .execute(&mut *w.tx)
        .await?;
    }
    w.commit().await
}

fn hex_of(stx: &SignedTransaction) -> String {
    hex::encode(stx.to_bytes())
}

/// Sends again what was recorded before `before_ms` and is not final, in
/// node batches; what the node now refuses for good (expired, say) is
/// marked refused, so it is not tried again.
async fn resend_recorded(db: &Db, node: &NodeClient, before_ms: u64) -> Result<(), ServiceError> {
    let mut after = String::new();
    loop {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT tx, signed FROM tsp_subscriptions
             WHERE state = 'sent' AND received_ms < $1 AND tx > $2 ORDER BY tx LIMIT 1000",
        )
        .bind(before_ms as i64)
        .bind(after.clone())
        .fetch_all(db.pool())
        .await?;
        let Some((last, _)) = rows.last() else {
            return Ok(());
        };
        after = last.clone();
        let mut ids = Vec::with_capacity(rows.len());
        let mut txs = Vec::with_capacity(rows.len());
        for (tx, signed) in &rows {
            let stx = hex::decode(signed)
                .ok()
                .and_then(|b| SignedTransaction::from_bytes(&b).ok())
                .ok_or_else(|| ServiceError::internal("a recorded subscription", tx))?;
            ids.push(tx.clone());
            txs.push(stx);
        }
        let answer = node
            .submit_batch(&txs)
            .await
            .map_err(ServiceError::unavailable)?;
        let refused: Vec<(String, &str)> = ids
            .into_iter()
            .zip(&answer.results)
            .filter_map(|(id, r)| match &r.error {
                Some(e) if refused_for_good(e.code) => Some((id, e.code.name())),
                _ => None,
            })
            .collect();
        if !refused.is_empty() {
            mark_refused(db, &refused).await?;
        }
        tracing::info!(
            n = txs.len(),
            refused = refused.len(),
            "recorded subscriptions sent again"
        );
    }
}

/// Whether the node's refusal stands however often the same transaction
/// is sent (unlike "held already" or "full, try later").
fn refused_for_good(code: ErrorCode) -> bool {
    !matches!(
        code,
        ErrorCode::NonceTaken | ErrorCode::NonceUsed | ErrorCode::MempoolFull
    )
}

/// Checks a body as a subscription `who` may hand in: a `subscribe` for
/// this chain, still valid (its signature is checked with the relay's lot).
/// Returns the subscription.
fn check<'a>(
    stx: &'a SignedTransaction,
    chain: &ChainId,
) -> Result<&'a tranche_types::Subscribe, ServiceError> {
    let Payload::Subscribe(p) = &stx.tx.payload else {
        return Err(refuse(
            ServiceCode::BadRequest,
            "the body is a signed subscribe transaction (tranche tx build payload of {\"type\":\"subscribe\",…}, then tranche tx sign)",
        ));
    };
    if &stx.tx.chain_id != chain {
        return Err(refuse(
            ServiceCode::BadRequest,
            format!(
                "the transaction is for the chain {}, not {chain}",
                stx.tx.chain_id
            ),
        ));
    }
    if stx.tx.valid_until.0 <= now_ms() {
        return Err(refuse(
            ServiceCode::BadRequest,
            "the transaction has expired; sign it again with a later valid_until",
        ));
    }
    Ok(p)
}

impl Tsp {
    /// Relays `stx`, `who`'s signed subscription: checked, recorded, sent.
    pub async fn subscribe(
        &self,
        who: &Principal,
        stx: SignedTransaction,
    ) -> Result<SubscriptionView, ServiceError> {
        let s = &self.service;
        let p = check(&stx, &s.chain_id)?;
        let offering = p.offering.to_string();
        if !self.opened_here(&offering).await? {
            return Err(refuse(
                ServiceCode::NotFound,
                format!("no offering {offering} was opened here"),
            ));
        }
        let wallet = stx.tx.signer.address();
        if !self.bound_to(&wallet.to_string(), &who.did).await? {
            return Err(refuse(
                ServiceCode::Forbidden,
                "the transaction is signed by a wallet the chain does not bind to the DID you logged in with",
            ));
        }
        let view = SubscriptionView {
            tx: stx.hash().to_hex(),
            offering,
            did: who.did.clone(),
            wallet: wallet.to_string(),
            units: p.units.to_string(),
            state: "sent".into(),
            outcome: None,
            height: None,
        };
        let (reply, answer) = oneshot::channel();
        self.relay
            .queue
            .try_send(Item { stx, view, reply })
            .map_err(|_| {
                refuse(
                    ServiceCode::NodeUnavailable,
                    "the TSP is relaying as many subscriptions as it takes; try again shortly",
                )
            })?;
        answer
            .await
            .map_err(|_| ServiceError::internal("the relay", "stopped"))?
    }

    /// Whether `offering` was opened through this service. Once opened it
    /// stays on record, so a yes is remembered.
    async fn opened_here(&self, offering: &str) -> Result<bool, ServiceError> {
        if self.relay.known.offerings.read().await.contains(offering) {
            return Ok(true);
        }
        let row: Option<(String,)> =
            sqlx::query_as("SELECT state FROM tsp_offerings WHERE offering = $1")
                .bind(offering.to_string())
                .fetch_optional(self.service.db.pool())
                .await?;
        if row.is_some() {
            self.relay
                .known
                .offerings
                .write()
                .await
                .insert(offering.to_string());
        }
        Ok(row.is_some())
    }

    /// Whether `wallet` is bound to `did`: through this TSP, or else as
    /// the chain says. A binding on chain does not change, so a yes is
    /// remembered (up to [`BINDINGS_REMEMBERED`]).
    async fn bound_to(&self, wallet: &str, did: &str) -> Result<bool, ServiceError> {
        if let Some(bound) = self.relay.known.bindings.read().await.get(wallet) {
            return Ok(bound == did);
        }
        let yes = self.bound_on_record(wallet, did).await?;
        if yes {
            self.binding_final(wallet.to_string(), did.to_string())
                .await;
        }
        Ok(yes)
    }

    /// Remembers that the chain binds `wallet` to `did`: the follower tells
    /// each binding it sees final, so that an investor's first
    /// subscription after onboarding is checked without a database read.
    pub(crate) async fn binding_final(&self, wallet: String, did: String) {
        let mut known = self.relay.known.bindings.write().await;
        if known.len() >= BINDINGS_REMEMBERED {
            known.clear();
        }
        known.insert(wallet, did);
    }

    async fn bound_on_record(&self, wallet: &str, did: &str) -> Result<bool, ServiceError> {
        let s = &self.service;
        let here: Option<(String, String)> =
            sqlx::query_as("SELECT did, state FROM tsp_wallets WHERE wallet = $1")
                .bind(wallet.to_string())
                .fetch_optional(s.db.pool())
                .await?;
        if let Some((bound, state)) = here {
            if state == "bound" {
                return Ok(bound == did);
            }
        }
        let address = wallet
            .parse()
            .map_err(|_| ServiceError::internal("a wallet address", wallet))?;
        let on_chain = s
            .node
            .wallet(&address)
            .await
            .map_err(ServiceError::unavailable)?
            .data
            .did;
        Ok(on_chain.is_some_and(|d| d.as_str() == did))
    }

    /// A relayed subscription: to the investor who handed it in, or staff.
    pub(crate) async fn subscription(
        &self,
        conn: &mut AnyConnection,
        who: &Principal,
        tx: &str,
    ) -> Result<SubscriptionView, ServiceError> {
        type Row = (
            String,
            String,
            String,
            String,
            String,
            Option<String>,
            Option<i64>,
        );
        let row: Option<Row> = sqlx::query_as(
            "SELECT offering, did, wallet, units, state, outcome, height FROM tsp_subscriptions WHERE tx = $1",
        )
        .bind(tx.to_string())
        .fetch_optional(&mut *conn)
        .await?;
        let staff = crate::READERS
            .iter()
            .any(|r| who.roles.iter().any(|x| x == r));
        match row {
            Some(r) if staff || r.1 == who.did => Ok(SubscriptionView {
                tx: tx.to_string(),
                offering: r.0,
                did: r.1,
                wallet: r.2,
                units: r.3,
                state: r.4,
                outcome: r.5,
                height: r.6.map(|h| h as u64),
            }),
            _ => Err(refuse(
                ServiceCode::NotFound,
                format!("no subscription {tx} of yours was relayed here"),
            )),
        }
    }

    /// A block's subscriptions are final — each applied, or rejected with
    /// its outcome — in the follower's transaction: those relayed here
    /// say so (the applied ones a few hundred at a statement).
    pub(crate) async fn subscriptions_final(
        conn: &mut AnyConnection,
        subscribed: &[(String, Result<(), String>)],
        height: u64,
    ) -> Result<(), sqlx::Error> {
        let applied: Vec<&String> = subscribed
            .iter()
            .filter(|(_, r)| r.is_ok())
            .map(|(tx, _)| tx)
            .collect();
        for chunk in applied.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "UPDATE tsp_subscriptions SET state = 'applied', outcome = 'applied', height = {}
                 WHERE tx IN ({})",
                params(conn, 1, 1),
                params(conn, 2, chunk.len())
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(height as i64);
            for tx in chunk {
                q = q.bind(tx.to_string());
            }
            q.execute(&mut *conn).await?;
        }
        for (tx, result) in subscribed {
            let Err(outcome) = result else { continue };
            sqlx::query(
                "UPDATE tsp_subscriptions SET state = 'rejected', outcome = $1, height = $2 WHERE tx = $3",
            )
            .bind(outcome.clone())
            .bind(height as i64)
            .bind(tx.clone())
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}
