//! What the custodian makes of each finalized block, in the block's
//! database transaction: the outcome of its own transactions (openings,
//! instructions, claims), every transfer touching a holder's wallet (an
//! event, and the wallet's balance), the checkpoints of tokens its holders
//! hold, and the claims it owes them once a distribution is funded.

use crate::notices::EventView;
use crate::Custodian;
use sqlx::AnyConnection;
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use tranche_api::node::BlockRecord;
use tranche_service::audit::Entry;
use tranche_service::db::{params, values};
use tranche_service::follower::Apply;
use tranche_service::ServiceError;
use tranche_types::{
    ClaimDistribution, Outcome, Payload, RequestId, TransferRecord, WalletAddress,
};

/// An event's place: the block, the transfer's position in it, and the
/// side (0 out of a holder's wallet, 1 into one), so ids are stable and
/// ordered.
pub(crate) fn event_seq(height: u64, index: usize, incoming: bool) -> i64 {
    (height as i64) * 1_048_576 + (index as i64) * 2 + i64::from(incoming)
}

impl Apply for Custodian {
    fn apply<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        block: &'a BlockRecord,
    ) -> Pin<Box<dyn Future<Output = Result<(), ServiceError>> + Send + 'a>> {
        Box::pin(self.apply_block(conn, block))
    }

    fn committed(&self, _block: &BlockRecord) {
        self.events.committed();
    }
}

impl Custodian {
    async fn apply_block(
        &self,
        conn: &mut AnyConnection,
        block: &BlockRecord,
    ) -> Result<(), ServiceError> {
        let ours = self.service.key.public_key();
        let height = block.height;
        let time = block.block.header.time.0;
        let mut book = Book::load(conn, &block.transfers).await?;
        let mut transfers = block.transfers.iter().enumerate().peekable();
        let mut claims: Vec<(RequestId, WalletAddress)> = Vec::new();
        for (stx, receipt) in block.block.txs.iter().zip(&block.receipts) {
            // This transaction's movements, in order.
            while let Some((k, t)) = transfers.next_if(|(_, t)| t.tx == receipt.tx_hash) {
                book.record(height, time, k, t)?;
            }
            let applied = matches!(receipt.outcome, Outcome::Applied);
            if stx.tx.signer == ours {
                self.settle_own(conn, stx, &receipt.outcome, height).await?;
            }
            if !applied {
                continue;
            }
            match &stx.tx.payload {
                Payload::CreateCheckpoint(p) => {
                    // The snapshot reads the balances as of this transaction.
                    book.flush(conn).await?;
                    let token = p.token.to_string();
                    let n: Option<(i64,)> =
                        sqlx::query_as("SELECT number FROM cus_checkpoint_counts WHERE token = $1")
                            .bind(token.clone())
                            .fetch_optional(&mut *conn)
                            .await?;
                    let number = n.map_or(1, |(n,)| n + 1);
                    sqlx::query(
                        "INSERT INTO cus_checkpoint_counts (token, number) VALUES ($1, $2)
                         ON CONFLICT (token) DO UPDATE SET number = excluded.number",
                    )
                    .bind(token.clone())
                    .bind(number)
                    .execute(&mut *conn)
                    .await?;
                    sqlx::query(
                        "INSERT INTO cus_checkpoints (token, number, wallet)
                         SELECT token, $1, wallet FROM cus_balances WHERE token = $2 AND units <> '0'",
                    )
                    .bind(number)
                    .bind(token)
                    .execute(&mut *conn)
                    .await?;
                }
                Payload::DeclareDistribution(p) => {
                    sqlx::query(
                        "INSERT INTO cus_distributions (distribution, token, checkpoint) VALUES ($1, $2, $3)
                         ON CONFLICT (distribution) DO NOTHING",
                    )
                    .bind(p.distribution.to_string())
                    .bind(p.token.to_string())
                    .bind(p.checkpoint as i64)
                    .execute(&mut *conn)
                    .await?;
                }
                Payload::FundDistribution(p) => {
                    let wallets: Vec<(String,)> = sqlx::query_as(
                        "SELECT c.wallet FROM cus_distributions d
                         JOIN cus_checkpoints c ON c.token = d.token AND c.number = d.checkpoint
                         WHERE d.distribution = $1 ORDER BY c.wallet",
                    )
                    .bind(p.distribution.to_string())
                    .fetch_all(&mut *conn)
                    .await?;
                    for (w,) in wallets {
                        let w = w
                            .parse()
                            .map_err(|_| ServiceError::internal("a holder's wallet", &w))?;
                        claims.push((p.distribution.clone(), w));
                    }
                }
                _ => {}
            }
        }
        // Movements not tied to a transaction of the block (none today).
        for (k, t) in transfers {
            book.record(height, time, k, t)?;
        }
        let events = book.flush(conn).await?;
        for (distribution, wallet) in claims {
            self.claim(conn, distribution, wallet).await?;
        }
        if events > 0 {
            self.events.pending();
        }
        Ok(())
    }

    /// Records the outcome of one of the custodian's own transactions.
    async fn settle_own(
        &self,
        conn: &mut AnyConnection,
        stx: &tranche_types::SignedTransaction,
        outcome: &Outcome,
        height: u64,
    ) -> Result<(), ServiceError> {
        let nonce = stx.tx.nonce as i64;
        let tx = stx.hash().to_hex();
        let (code, message) = match outcome {
            Outcome::Applied => (None, None),
            Outcome::Rejected(r) => (Some(r.code.name().to_string()), Some(r.message.clone())),
        };
        let applied = code.is_none();
        match &stx.tx.payload {
            Payload::OpenCustodialWallet(_) => {
                sqlx::query(
                    "UPDATE cus_holders SET state = $1, outcome = $2, tx = $3 WHERE nonce = $4 AND state = 'opening'",
                )
                .bind(if applied { "open" } else { "failed" })
                .bind(code.clone().unwrap_or_else(|| "applied".into()))
                .bind(tx)
                .bind(nonce)
                .execute(&mut *conn)
                .await?;
            }
            Payload::CustodialTransfer(p) => {
                sqlx::query(
                    "UPDATE cus_instructions SET state = $1, reason = $2, message = $3, height = $4, tx = $5
                     WHERE nonce = $6 AND state = 'submitted'",
                )
                .bind(if applied { "applied" } else { "rejected" })
                .bind(code.clone())
                .bind(message)
                .bind(height as i64)
                .bind(tx)
                .bind(nonce)
                .execute(&mut *conn)
                .await?;
                if !applied {
                    // The chain did not use the number: the holder's next
                    // authorization carries it again.
                    sqlx::query(
                        "UPDATE cus_holders SET next_number = $1
                         WHERE did = (SELECT did FROM cus_instructions WHERE nonce = $2) AND next_number > $1",
                    )
                    .bind(p.authorization.number as i64)
                    .bind(nonce)
                    .execute(&mut *conn)
                    .await?;
                }
            }
            Payload::ClaimDistribution(_) => {
                sqlx::query("UPDATE cus_claims SET state = $1, outcome = $2 WHERE nonce = $3")
                    .bind(if applied { "paid" } else { "not_paid" })
                    .bind(code.unwrap_or_else(|| "applied".into()))
                    .bind(nonce)
                    .execute(&mut *conn)
                    .await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Records the custodian's claim of `wallet`'s share of `distribution`
    /// (once).
    async fn claim(
        &self,
        conn: &mut AnyConnection,
        distribution: RequestId,
        wallet: WalletAddress,
    ) -> Result<(), ServiceError> {
        let known: Option<(i64,)> =
            sqlx::query_as("SELECT nonce FROM cus_claims WHERE distribution = $1 AND wallet = $2")
                .bind(distribution.to_string())
                .bind(wallet.to_string())
                .fetch_optional(&mut *conn)
                .await?;
        if known.is_some() {
            return Ok(());
        }
        let s = &self.service;
        let entry = Entry::by_chain(
            &s.config.org,
            "claim_distribution",
            format!("{distribution}/{wallet}"),
            "claimed for the holder's custodial wallet".into(),
        );
        let payload = Payload::ClaimDistribution(ClaimDistribution {
            distribution: distribution.clone(),
            custodial_wallet: Some(wallet),
        });
        let (nonce, _) = s.decide_tx(conn, payload, entry).await?;
        sqlx::query(
            "INSERT INTO cus_claims (distribution, wallet, nonce, state) VALUES ($1, $2, $3, 'claiming')",
        )
        .bind(distribution.to_string())
        .bind(wallet.to_string())
        .bind(nonce as i64)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

/// Rows written per multi-row statement.
const ROWS_PER_STATEMENT: usize = 50;

/// A block's movements of holders' wallets, worked out in memory and
/// written in a few statements: the holders and balances it touches,
/// loaded once, and the events it makes.
struct Book {
    /// The holders' DIDs, by custodial wallet, of the wallets the block touches.
    holders: HashMap<WalletAddress, String>,
    /// Their balances, by wallet and token.
    balances: HashMap<(WalletAddress, String), u128>,
    /// Balances changed since the last flush.
    dirty: BTreeSet<(WalletAddress, String)>,
    /// Events not yet written: seq, did, wallet, body.
    events: Vec<(i64, String, String, String)>,
    /// Events written so far.
    written: usize,
}

impl Book {
    /// Loads what the block's `transfers` touch.
    async fn load(
        conn: &mut AnyConnection,
        transfers: &[TransferRecord],
    ) -> Result<Book, ServiceError> {
        let wallets: BTreeSet<String> = transfers
            .iter()
            .flat_map(|t| t.from.into_iter().chain([t.to]))
            .map(|w| w.to_string())
            .collect();
        let wallets: Vec<String> = wallets.into_iter().collect();
        let mut book = Book {
            holders: HashMap::new(),
            balances: HashMap::new(),
            dirty: BTreeSet::new(),
            events: Vec::new(),
            written: 0,
        };
        for chunk in wallets.chunks(ROWS_PER_STATEMENT * 4) {
            let mut q = sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(format!(
                "SELECT wallet, did FROM cus_holders WHERE wallet IN ({})",
                params(conn, 1, chunk.len())
            )));
            for w in chunk {
                q = q.bind(w.clone());
            }
            for (w, did) in q.fetch_all(&mut *conn).await? {
                let w = w
                    .parse()
                    .map_err(|_| ServiceError::internal("a holder's wallet", &w))?;
                book.holders.insert(w, did);
            }
        }
        let held: Vec<String> = book.holders.keys().map(|w| w.to_string()).collect();
        for chunk in held.chunks(ROWS_PER_STATEMENT * 4) {
            let mut q =
                sqlx::query_as::<_, (String, String, String)>(sqlx::AssertSqlSafe(format!(
                    "SELECT wallet, token, units FROM cus_balances WHERE wallet IN ({})",
                    params(conn, 1, chunk.len())
                )));
            for w in chunk {
                q = q.bind(w.clone());
            }
            for (w, token, units) in q.fetch_all(&mut *conn).await? {
                let w = w
                    .parse()
                    .map_err(|_| ServiceError::internal("a holder's wallet", &w))?;
                let units = units
                    .parse()
                    .map_err(|_| ServiceError::internal("a holder's balance", &units))?;
                book.balances.insert((w, token), units);
            }
        }
        Ok(book)
    }

    /// Notes transfer `t` (the `index`th of its block) for each holder's
    /// wallet it touches.
    fn record(
        &mut self,
        height: u64,
        time: u64,
        index: usize,
        t: &TransferRecord,
    ) -> Result<(), ServiceError> {
        for (wallet, incoming) in [(t.from, false), (Some(t.to), true)] {
            let Some(wallet) = wallet else { continue };
            let Some(did) = self.holders.get(&wallet) else {
                continue;
            };
            let token = t.token.to_string();
            let key = (wallet, token.clone());
            let held = self.balances.get(&key).copied().unwrap_or(0);
            let units = if incoming {
                held.checked_add(t.amount.0)
            } else {
                held.checked_sub(t.amount.0)
            }
            .ok_or_else(|| {
                ServiceError::internal("a holder's balance that the chain contradicts", wallet)
            })?;
            self.balances.insert(key.clone(), units);
            self.dirty.insert(key);
            let seq = event_seq(height, index, incoming);
            let event = EventView {
                id: format!("{height}-{index}-{}", if incoming { "in" } else { "out" }),
                seq: seq as u64,
                did: did.clone(),
                wallet: wallet.to_string(),
                direction: if incoming { "in" } else { "out" }.into(),
                token,
                amount: t.amount,
                counterparty: if incoming {
                    t.from.map(|w| w.to_string())
                } else {
                    Some(t.to.to_string())
                },
                kind: format!("{:?}", t.kind).to_lowercase(),
                reference: t.reference.as_ref().map(|r| r.to_string()),
                tx: t.tx.to_hex(),
                height,
                block_time_ms: time,
                balance: tranche_types::Units(units),
            };
            let body =
                serde_json::to_string(&event).map_err(|e| ServiceError::internal("an event", e))?;
            self.events
                .push((seq, did.clone(), wallet.to_string(), body));
        }
        Ok(())
    }

    /// Writes the changed balances and the new events; returns how many
    /// events the block made so far.
    async fn flush(&mut self, conn: &mut AnyConnection) -> Result<usize, ServiceError> {
        let dirty: Vec<(WalletAddress, String)> =
            std::mem::take(&mut self.dirty).into_iter().collect();
        for chunk in dirty.chunks(ROWS_PER_STATEMENT) {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO cus_balances (wallet, token, units) VALUES {}
                 ON CONFLICT (wallet, token) DO UPDATE SET units = excluded.units",
                values(&*conn, chunk.len(), 3)
            )));
            for key in chunk {
                let units = self.balances.get(key).copied().unwrap_or(0);
                q = q
                    .bind(key.0.to_string())
                    .bind(key.1.clone())
                    .bind(units.to_string());
            }
            q.execute(&mut *conn).await?;
        }
        let events = std::mem::take(&mut self.events);
        for chunk in events.chunks(ROWS_PER_STATEMENT) {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO cus_events (seq, did, wallet, body) VALUES {}
                 ON CONFLICT (seq) DO NOTHING",
                values(&*conn, chunk.len(), 4)
            )));
            for (seq, did, wallet, body) in chunk {
                q = q
                    .bind(*seq)
                    .bind(did.clone())
                    .bind(wallet.clone())
                    .bind(body.clone());
            }
            q.execute(&mut *conn).await?;
        }
        self.written += events.len();
        Ok(self.written)
    }
}
