//! The transactions a service signs: each recorded (payload, nonce, hash,
//! signed bytes) in the same database transaction as the decision it carries
//! out, before it is sent; sent until the chain has it.
//!
//! After a crash nothing is lost (what was decided is in the outbox) and
//! nothing is doubled (a transaction is sent again byte for byte, with the
//! same nonce, so the chain takes it at most once). Nonces are handed out
//! in order from the chain's next nonce for the key, so they never repeat or
//! leave gaps. The organisation's key belongs to its service alone: a
//! transaction signed with it elsewhere takes a nonce the outbox expects.

use crate::error::ServiceError;
use sqlx::AnyConnection;
use std::sync::{Arc, Mutex};
use tranche_api::client::NodeClient;
use tranche_api::ErrorCode;
use tranche_crypto::{sign_transaction, Keypair};
use tranche_types::{ChainId, Hash, Payload, SignedTransaction, Timestamp, Transaction};

/// Rows one insert writes (SQLite looks a statement's parameters up by
/// name, so a few dozen rows a statement cost less than hundreds).
const ROWS_PER_INSERT: usize = 50;

/// The name of `payload`'s kind, as its JSON's `type` says.
fn kind_of(payload: &Payload) -> String {
    serde_json::to_value(payload)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_string))
        .unwrap_or_default()
}

/// How long a recorded transaction stays valid: long enough to ride out a
/// node restart, well inside what nodes accept.
pub const VALIDITY_MS: u64 = 3_600_000;

/// How many pending transactions one pass sends at most: what a node holds
/// of an organisation's key (its mempool takes 1,024, up to 1,024 past the
/// next nonce).
pub const SEND_WINDOW: usize = 1_024;

/// The most transactions one decision sends together (an offering's close
/// or issuance in groups): a larger group goes on from where the chain
/// shows it stopped.
pub const GROUP_MAX: usize = 64;
// A group goes out in one pass.
const _: () = assert!(GROUP_MAX <= SEND_WINDOW);

/// How often everything pending is sent again, in ms, in case the node lost
/// it (a restart, a dropped request); in between, a pass sends only what it
/// has not sent yet.
pub const RESEND_MS: u64 = 2_000;

/// How many bytes of JSON one batch request may carry, with room to spare
/// below the node's limit.
const BATCH_JSON_BYTES: usize = 3 << 20;

/// States of an outbox entry.
pub mod state {
    /// Recorded, not yet seen in a finalized block.
    pub const PENDING: &str = "pending";
    /// In a finalized block (applied or rejected: see `outcome`).
    pub const FINAL: &str = "final";
    /// Refused by the node as invalid: needs an operator.
    pub const REFUSED: &str = "refused";
}

/// How many transactions of at most `per` items each cover `items` (at
/// least one: an empty offering still closes), capped at [`GROUP_MAX`]; a
/// group larger than that goes on from where the chain shows it stopped.
pub fn batches(items: u64, per: u32) -> usize {
    let n = items.div_ceil(u64::from(per.max(1))).max(1);
    usize::try_from(n).unwrap_or(usize::MAX).min(GROUP_MAX)
}

/// A service's outbox: its key and chain, and what it sent lately.
#[derive(Clone, Debug)]
pub struct Outbox {
    key: Arc<Keypair>,
    chain_id: ChainId,
    sent: Arc<Mutex<Sent>>,
}

/// What the sender sent lately (kept in memory: after a restart everything
/// pending is sent again, which the chain takes at most once).
#[derive(Debug, Default)]
struct Sent {
    /// Every pending entry up to this nonce was sent since the last full pass.
    through: Option<u64>,
    /// When everything pending was last sent, ms since 1970.
    full_ms: u64,
}

/// Splits `entries` into requests the node takes: at most its batch size,
/// and about [`BATCH_JSON_BYTES`] of JSON.
fn requests<'a>(entries: &[&'a Pending]) -> Vec<Vec<&'a Pending>> {
    let mut out: Vec<Vec<&'a Pending>> = Vec::new();
    let mut bytes = 0;
    for p in entries {
        // Hex doubles the canonical bytes; field names and quotes add some.
        let size = p.stx.to_bytes().len() * 2 + 512;
        let full = out.last().is_none_or(|r| {
            r.len() >= tranche_api::BATCH_TXS_MAX || bytes + size > BATCH_JSON_BYTES
        });
        if full {
            out.push(Vec::new());
            bytes = 0;
        }
        bytes += size;
        if let Some(r) = out.last_mut() {
            r.push(p);
        }
    }
    out
}

/// A pending entry.
#[derive(Clone, Debug)]
pub struct Pending {
    /// Its nonce.
    pub nonce: u64,
    /// The transaction.
    pub stx: SignedTransaction,
}

fn decode(hex_tx: &str) -> Result<SignedTransaction, sqlx::Error> {
    let bytes = hex::decode(hex_tx).map_err(|e| sqlx::Error::Decode(e.into()))?;
    SignedTransaction::from_bytes(&bytes).map_err(|e| sqlx::Error::Decode(e.to_string().into()))
}

impl Outbox {
    /// The outbox signing with `key` for `chain_id`.
    pub fn new(key: Arc<Keypair>, chain_id: ChainId) -> Outbox {
        Outbox {
            key,
            chain_id,
            sent: Arc::default(),
        }
    }

    fn sent(&self) -> std::sync::MutexGuard<'_, Sent> {
        // Plain numbers behind the lock: a panic elsewhere leaves them usable.
        self.sent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes the chain's next nonce for the key, if the outbox has not
    /// handed out one past it already (the first start, or a key whose
    /// nonces moved on while the service was away).
    pub async fn start_at(
        &self,
        conn: &mut AnyConnection,
        chain_next: u64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO kit_cursor (name, height) VALUES ('outbox_next_nonce', $1)
             ON CONFLICT (name) DO UPDATE SET height = excluded.height
             WHERE kit_cursor.height < excluded.height",
        )
        .bind(chain_next as i64)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Signs `payload` with the next nonce and records it, in the caller's
    /// transaction; the hash is the transaction's id on chain.
    pub async fn record(
        &self,
        conn: &mut AnyConnection,
        payload: Payload,
        now_ms: u64,
    ) -> Result<Hash, ServiceError> {
        Ok(self.record_nonced(conn, payload, now_ms).await?.1)
    }

    /// [`Outbox::record`], with the nonce: what stays the same if an
    /// expired entry is signed again (its hash does not).
    pub async fn record_nonced(
        &self,
        conn: &mut AnyConnection,
        payload: Payload,
        now_ms: u64,
    ) -> Result<(u64, Hash), ServiceError> {
        self.record_built(conn, |_| payload, now_ms).await
    }

    /// [`Outbox::record_nonced`] of the payload `build` makes for the
    /// nonce the transaction gets: for payloads whose approvals sign the
    /// signer's nonce (a settlement's).
    pub async fn record_built(
        &self,
        conn: &mut AnyConnection,
        build: impl FnOnce(u64) -> Payload,
        now_ms: u64,
    ) -> Result<(u64, Hash), ServiceError> {
        let recorded = self.record_built_many(conn, vec![build], now_ms).await?;
        Ok(*recorded.first().expect("one recorded for one built"))
    }

    /// [`Outbox::record_built`] for several payloads, in order, with
    /// consecutive nonces: one read and one write of the nonce counter and a
    /// multi-row insert for the lot, instead of three statements each (an
    /// exchange records a batch's settlements this way inside its write
    /// turn).
    pub async fn record_built_many<F: FnOnce(u64) -> Payload>(
        &self,
        conn: &mut AnyConnection,
        builds: Vec<F>,
        now_ms: u64,
    ) -> Result<Vec<(u64, Hash)>, ServiceError> {
        if builds.is_empty() {
            return Ok(Vec::new());
        }
        let (next,): (i64,) =
            sqlx::query_as("SELECT height FROM kit_cursor WHERE name = 'outbox_next_nonce'")
                .fetch_optional(&mut *conn)
                .await?
                .ok_or_else(|| ServiceError::internal("the outbox", "not started"))?;
        let first = next as u64;
        // A lot is usually of one kind: its name is read from the first
        // payload of each kind only (it takes encoding the payload).
        let mut named: Option<(std::mem::Discriminant<Payload>, String)> = None;
        let mut rows = Vec::with_capacity(builds.len());
        for (nonce, build) in (first..).zip(builds) {
            let payload = build(nonce);
            let which = std::mem::discriminant(&payload);
            let kind = match &named {
                Some((d, name)) if *d == which => name.clone(),
                _ => {
                    let name = kind_of(&payload);
                    named = Some((which, name.clone()));
                    name
                }
            };
            let stx = self.sign(nonce, payload, now_ms)?;
            rows.push((nonce, stx.tx.hash(), kind, stx));
        }
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO kit_outbox (nonce, hash, kind, tx, valid_until, state, recorded_ms)
                 VALUES {}",
                crate::db::values(&*conn, chunk.len(), 7)
            )));
            for (nonce, hash, kind, stx) in chunk {
                q = q
                    .bind(*nonce as i64)
                    .bind(hash.to_hex())
                    .bind(kind.clone())
                    .bind(hex::encode(stx.to_bytes()))
                    .bind(stx.tx.valid_until.0 as i64)
                    .bind(state::PENDING)
                    .bind(now_ms as i64);
            }
            q.execute(&mut *conn).await?;
        }
        sqlx::query("UPDATE kit_cursor SET height = $1 WHERE name = 'outbox_next_nonce'")
            .bind((first + rows.len() as u64) as i64)
            .execute(&mut *conn)
            .await?;
        Ok(rows.into_iter().map(|(n, h, _, _)| (n, h)).collect())
    }

    fn sign(
        &self,
        nonce: u64,
        payload: Payload,
        now_ms: u64,
    ) -> Result<SignedTransaction, ServiceError> {
        let tx = Transaction {
            chain_id: self.chain_id.clone(),
            signer: self.key.public_key(),
            nonce,
            valid_until: Timestamp(now_ms.saturating_add(VALIDITY_MS)),
            payload,
        };
        sign_transaction(&self.key, tx).map_err(|e| ServiceError::internal("signing", e))
    }

    /// Marks every entry `block` carries final, with its outcome, in the
    /// follower's transaction: only the transactions this outbox's key
    /// signed are looked up, so a full block of other people's costs
    /// nothing here.
    pub async fn finalized(
        &self,
        conn: &mut AnyConnection,
        block: &tranche_api::node::BlockRecord,
    ) -> Result<(), sqlx::Error> {
        let ours = self.key.public_key();
        for (stx, r) in block.block.txs.iter().zip(&block.receipts) {
            if stx.tx.signer != ours {
                continue;
            }
            let outcome = match &r.outcome {
                tranche_types::Outcome::Applied => "applied".to_string(),
                tranche_types::Outcome::Rejected(rej) => rej.code.name().to_string(),
            };
            sqlx::query(
                "UPDATE kit_outbox SET state = $1, height = $2, outcome = $3 WHERE hash = $4",
            )
            .bind(state::FINAL)
            .bind(block.height as i64)
            .bind(outcome)
            .bind(r.tx_hash.to_hex())
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    /// The first `limit` entries not yet final, by nonce.
    pub async fn pending(
        conn: &mut AnyConnection,
        limit: usize,
    ) -> Result<Vec<Pending>, sqlx::Error> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT nonce, tx FROM kit_outbox WHERE state = $1 ORDER BY nonce LIMIT $2",
        )
        .bind(state::PENDING)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut *conn)
        .await?;
        rows.into_iter()
            .map(|(nonce, tx)| {
                Ok(Pending {
                    nonce: nonce as u64,
                    stx: decode(&tx)?,
                })
            })
            .collect()
    }

    /// How many entries are not yet final.
    pub async fn pending_count(conn: &mut AnyConnection) -> Result<usize, sqlx::Error> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM kit_outbox WHERE state = $1")
            .bind(state::PENDING)
            .fetch_one(&mut *conn)
            .await?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Sends the pending entries not sent yet, of the first [`SEND_WINDOW`]
    /// (all of them every [`RESEND_MS`]), in as few node requests as the
    /// node takes. A node holds only so many of one signer's transactions,
    /// and only so far past its next nonce, so what lies beyond the window
    /// waits for the window to move as blocks take the first ones.
    ///
    /// A transaction the node calls expired is signed again with the same
    /// nonce and payload and a new validity (it can no longer be included,
    /// so the new one cannot double it); one the node calls invalid is set
    /// aside as refused for an operator. Returns how many are still pending.
    pub async fn send_pending(
        &self,
        db: &crate::Db,
        node: &NodeClient,
        now_ms: u64,
    ) -> Result<usize, ServiceError> {
        let mut conn = db.pool().acquire().await?;
        let count = Outbox::pending_count(&mut conn).await?;
        let window = Outbox::pending(&mut conn, SEND_WINDOW).await?;
        drop(conn);
        let (through, full) = {
            let sent = self.sent();
            (
                sent.through,
                now_ms.saturating_sub(sent.full_ms) >= RESEND_MS,
            )
        };
        let fresh: Vec<&Pending> = window
            .iter()
            .filter(|p| full || through.is_none_or(|t| p.nonce > t))
            .collect();
        let Some(last) = fresh.last().map(|p| p.nonce) else {
            return Ok(count);
        };
        // Where sending stopped: the entries from there on wait for a pass.
        let mut stopped: Option<u64> = None;
        let mut renewed = false;
        'requests: for entries in requests(&fresh) {
            let request: Vec<SignedTransaction> = entries.iter().map(|p| p.stx.clone()).collect();
            let answer = match node.submit_batch(&request).await {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "the node is unreachable; the outbox tries again");
                    return Ok(count);
                }
            };
            for (p, item) in entries.iter().zip(&answer.results) {
                let Some(body) = &item.error else { continue };
                match body.code {
                    // Ours is in the mempool or a block already: the
                    // follower will see it.
                    ErrorCode::NonceTaken | ErrorCode::NonceUsed => {}
                    // The node holds as many of ours as it takes: the rest
                    // wait for the next pass.
                    ErrorCode::MempoolFull | ErrorCode::NonceTooFar => {
                        stopped = Some(p.nonce);
                        break 'requests;
                    }
                    ErrorCode::TxExpired => {
                        self.renew(db, p, now_ms).await?;
                        renewed = true;
                    }
                    code => {
                        tracing::error!(nonce = p.nonce, code = code.name(), message = %body.message,
                            "the node refused an outbox transaction; later ones wait for an operator");
                        let mut w = db.write().await?;
                        sqlx::query(
                            "UPDATE kit_outbox SET state = $1, outcome = $2 WHERE nonce = $3",
                        )
                        .bind(state::REFUSED)
                        .bind(code.name())
                        .bind(p.nonce as i64)
                        .execute(&mut *w.tx)
                        .await?;
                        w.commit().await?;
                        stopped = Some(p.nonce);
                        break 'requests;
                    }
                }
            }
        }
        let mut sent = self.sent();
        sent.through = match stopped {
            Some(n) => n.checked_sub(1),
            None => Some(last),
        };
        if renewed {
            // A renewed entry has a new hash: send everything next pass.
            sent.full_ms = 0;
        } else if full {
            sent.full_ms = now_ms;
        }
        Ok(count)
    }

    /// Signs an expired entry again: the same nonce and payload, a new
    /// validity.
    async fn renew(&self, db: &crate::Db, p: &Pending, now_ms: u64) -> Result<(), ServiceError> {
        let renewed = self.sign(p.nonce, p.stx.tx.payload.clone(), now_ms)?;
        let mut w = db.write().await?;
        sqlx::query(
            "UPDATE kit_outbox SET hash = $1, tx = $2, valid_until = $3
             WHERE nonce = $4 AND state = $5",
        )
        .bind(renewed.tx.hash().to_hex())
        .bind(hex::encode(renewed.to_bytes()))
        .bind(renewed.tx.valid_until.0 as i64)
        .bind(p.nonce as i64)
        .bind(state::PENDING)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await?;
        tracing::warn!(
            nonce = p.nonce,
            "an outbox transaction expired unsent; signed again"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_covers_every_item_within_one_pass() {
        assert_eq!(batches(0, 1_000), 1, "an empty offering closes too");
        assert_eq!(batches(1, 1_000), 1);
        assert_eq!(batches(1_000, 1_000), 1);
        assert_eq!(batches(1_001, 1_000), 2);
        assert_eq!(batches(10_000, 1_000), 10);
        assert_eq!(batches(1_000_000, 1_000), GROUP_MAX);
        assert_eq!(
            batches(5, 0),
            GROUP_MAX.min(5),
            "a zero batch size is one item"
        );
    }

    #[test]
    fn requests_stay_within_what_a_node_takes() {
        let key = Keypair::from_seed(&[3; 32]);
        let outbox = Outbox::new(Arc::new(key), "tranche-test".parse().unwrap());
        let pending = |nonce: u64, fill: u8| {
            let payload = Payload::AnchorAudit(tranche_types::AnchorAudit {
                entries: nonce,
                head: Hash([fill; 32]),
            });
            Pending {
                nonce,
                stx: outbox.sign(nonce, payload, 1).unwrap(),
            }
        };
        let many: Vec<Pending> = (0..2_500).map(|n| pending(n, 1)).collect();
        let refs: Vec<&Pending> = many.iter().collect();
        let split = requests(&refs);
        assert_eq!(
            split.iter().map(Vec::len).collect::<Vec<_>>(),
            [tranche_api::BATCH_TXS_MAX, tranche_api::BATCH_TXS_MAX, 500]
        );
        let nonces: Vec<u64> = split.iter().flatten().map(|p| p.nonce).collect();
        assert_eq!(
            nonces,
            (0..2_500).collect::<Vec<_>>(),
            "in order, each once"
        );
        assert!(requests(&[]).is_empty());
    }
}
