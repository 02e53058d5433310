//! What the regulator keeps of each finalized block, in the block's
//! database transaction: every wallet binding (and which exchange made
//! it), the movements of units touching each exchange's wallets (one row
//! per block and exchange, packed: see [`crate::packed`]), the outcome of its own policy
//! transactions, and the freezes on chain its requests asked for.

use crate::packed::{pack_moves, Kept};
use crate::Regulator;
use sqlx::AnyConnection;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tranche_api::node::BlockRecord;
use tranche_api::report::kind_name;
use tranche_service::db::params;
use tranche_service::follower::Apply;
use tranche_service::ServiceError;
use tranche_types::{Outcome, Payload, PublicKey, Role, TransferKind, WalletAddress};

impl Apply for Regulator {
    fn apply<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        block: &'a BlockRecord,
    ) -> Pin<Box<dyn Future<Output = Result<(), ServiceError>> + Send + 'a>> {
        Box::pin(self.apply_block(conn, block))
    }
}

/// Most wallets one lookup names.
const LOOKUP_CHUNK: usize = 400;

/// The DID and the binding exchange of each of `wallets` (text forms) that
/// `rg_wallets` holds, read [`LOOKUP_CHUNK`] at a time.
pub(crate) async fn bound_wallets(
    conn: &mut AnyConnection,
    wallets: &[&str],
) -> Result<HashMap<String, (String, Option<String>)>, ServiceError> {
    let mut bound = HashMap::with_capacity(wallets.len());
    for chunk in wallets.chunks(LOOKUP_CHUNK) {
        let mut q =
            sqlx::query_as::<_, (String, String, Option<String>)>(sqlx::AssertSqlSafe(format!(
                "SELECT wallet, did, exchange FROM rg_wallets WHERE wallet IN ({})",
                params(conn, 1, chunk.len())
            )));
        for w in chunk {
            q = q.bind(w.to_string());
        }
        for (w, did, exchange) in q.fetch_all(&mut *conn).await? {
            bound.insert(w, (did, exchange));
        }
    }
    Ok(bound)
}

/// A wallet as the follower needs it: its text form, and the DID and
/// exchange the chain bound it to, if any.
#[derive(Debug)]
pub(crate) struct Binding {
    text: String,
    did: Option<String>,
    exchange: Option<String>,
}

/// Most wallets the follower remembers; past it, it starts again (the
/// table is the record, this only spares reading it).
const REMEMBERED_MAX: usize = 200_000;

/// The wallets the follower has looked up, by address.
pub(crate) type Bindings = std::sync::Mutex<HashMap<WalletAddress, Arc<Binding>>>;

impl Regulator {
    fn remember(&self, wallet: WalletAddress, binding: Binding) -> Arc<Binding> {
        let binding = Arc::new(binding);
        let mut known = self.bindings.lock().unwrap_or_else(|e| e.into_inner());
        if known.len() >= REMEMBERED_MAX {
            known.clear();
        }
        known.insert(wallet, Arc::clone(&binding));
        binding
    }

    /// The binding of every wallet `block` moved units of: remembered, or
    /// read from `rg_wallets` and remembered. Only the follower writes
    /// bindings, and it remembers each as it writes it, before the block's
    /// movements are read; a block rolled back is applied again with the
    /// same bindings, and a restart starts from the table.
    async fn bindings_of(
        &self,
        conn: &mut AnyConnection,
        block: &BlockRecord,
    ) -> Result<HashMap<WalletAddress, Arc<Binding>>, ServiceError> {
        let wallets: BTreeSet<WalletAddress> = block
            .transfers
            .iter()
            .flat_map(|t| t.from.into_iter().chain(std::iter::once(t.to)))
            .collect();
        let mut found = HashMap::with_capacity(wallets.len());
        let mut unknown = Vec::new();
        {
            let known = self.bindings.lock().unwrap_or_else(|e| e.into_inner());
            for w in wallets {
                match known.get(&w) {
                    Some(b) => {
                        found.insert(w, Arc::clone(b));
                    }
                    None => unknown.push((w, w.to_string())),
                }
            }
        }
        let texts: Vec<&str> = unknown.iter().map(|(_, t)| t.as_str()).collect();
        let mut rows = bound_wallets(conn, &texts).await?;
        for (w, text) in unknown {
            let (did, exchange) = match rows.remove(&text) {
                Some((did, exchange)) => (Some(did), exchange),
                None => (None, None),
            };
            let binding = Binding {
                text,
                did,
                exchange,
            };
            found.insert(w, self.remember(w, binding));
        }
        Ok(found)
    }

    /// The organisation signing with `key` and whether it is an exchange;
    /// asked of the node once, then kept.
    pub(crate) async fn org_of(
        &self,
        conn: &mut AnyConnection,
        key: &PublicKey,
    ) -> Result<Option<(String, bool)>, ServiceError> {
        let hex = key.to_hex();
        let known: Option<(String, i64)> =
            sqlx::query_as("SELECT org, exchange FROM rg_orgs WHERE key = $1")
                .bind(hex.clone())
                .fetch_optional(&mut *conn)
                .await?;
        if let Some((org, exchange)) = known {
            return Ok(Some((org, exchange != 0)));
        }
        let Some(o) = self
            .service
            .node
            .organisation_of_key(key)
            .await
            .map_err(ServiceError::unavailable)?
        else {
            return Ok(None);
        };
        let org = o.data.org.to_string();
        let exchange = o.data.roles.contains(&Role::Exchange);
        sqlx::query("INSERT INTO rg_orgs (key, org, exchange) VALUES ($1, $2, $3)")
            .bind(hex)
            .bind(org.clone())
            .bind(i64::from(exchange))
            .execute(&mut *conn)
            .await?;
        Ok(Some((org, exchange)))
    }

    async fn apply_block(
        &self,
        conn: &mut AnyConnection,
        block: &BlockRecord,
    ) -> Result<(), ServiceError> {
        let ours = self.service.key.public_key();
        let height = block.height as i64;
        for (stx, receipt) in block.block.txs.iter().zip(&block.receipts) {
            let applied = matches!(receipt.outcome, Outcome::Applied);
            match &stx.tx.payload {
                Payload::RegisterWallet(p) if applied => {
                    // Who bound it: a wallet an exchange bound is one of
                    // its traders' (F6-11).
                    let exchange = match self.org_of(conn, &stx.tx.signer).await? {
                        Some((org, true)) => Some(org),
                        _ => None,
                    };
                    sqlx::query(
                        "INSERT INTO rg_wallets (wallet, did, exchange, height) VALUES ($1, $2, $3, $4)
                         ON CONFLICT (wallet) DO UPDATE SET did = excluded.did,
                             exchange = excluded.exchange, height = excluded.height",
                    )
                    .bind(p.wallet.to_string())
                    .bind(p.did.to_string())
                    .bind(exchange.clone())
                    .bind(height)
                    .execute(&mut *conn)
                    .await?;
                    self.remember(
                        p.wallet,
                        Binding {
                            text: p.wallet.to_string(),
                            did: Some(p.did.to_string()),
                            exchange,
                        },
                    );
                }
                Payload::PublishAmlPolicy(_) if stx.tx.signer == ours => {
                    let outcome = match &receipt.outcome {
                        Outcome::Applied => ("in_force_soon", None),
                        Outcome::Rejected(r) => (
                            "rejected",
                            Some(format!("{}: {}", r.code.name(), r.message)),
                        ),
                    };
                    sqlx::query("UPDATE rg_policies SET state = $1, outcome = $2 WHERE nonce = $3")
                        .bind(outcome.0)
                        .bind(outcome.1)
                        .bind(stx.tx.nonce as i64)
                        .execute(&mut *conn)
                        .await?;
                }
                Payload::SetFrozen(p) if applied && p.frozen => {
                    let tx = receipt.tx_hash.to_hex();
                    self.freeze_seen(
                        conn,
                        p.token.as_str(),
                        &p.wallet.to_string(),
                        (block.height, &tx),
                    )
                    .await?;
                }
                _ => {}
            }
        }
        if block.transfers.is_empty() {
            return Ok(());
        }
        let bound = self.bindings_of(conn, block).await?;
        // The movements touching each exchange's wallets: one row per
        // exchange for the block, packed.
        let mut kinds: HashMap<TransferKind, String> = HashMap::new();
        for t in &block.transfers {
            kinds.entry(t.kind).or_insert_with(|| kind_name(t.kind));
        }
        let mut moves: BTreeMap<&String, Vec<Kept<'_>>> = BTreeMap::new();
        for (index, t) in block.transfers.iter().enumerate() {
            let from = t.from.map(|w| &*bound[&w]);
            let to = &*bound[&t.to];
            let mut exchanges: Vec<&String> = [from, Some(to)]
                .into_iter()
                .flatten()
                .filter_map(|b| b.exchange.as_ref())
                .collect();
            exchanges.dedup();
            for exchange in exchanges {
                moves.entry(exchange).or_default().push(Kept {
                    tx: t.tx,
                    index: index as u32,
                    token: t.token.as_str(),
                    from_wallet: from.map(|b| b.text.as_str()),
                    from: from.and_then(|b| b.did.as_deref()),
                    to_wallet: &to.text,
                    to: to.did.as_deref(),
                    amount: t.amount,
                    kind: &kinds[&t.kind],
                });
            }
        }
        for (exchange, moves) in moves {
            sqlx::query(
                "INSERT INTO rg_blocks (exchange, height, moves, packed) VALUES ($1, $2, '', $3)",
            )
            .bind(exchange.clone())
            .bind(height)
            .bind(pack_moves(&moves))
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}
