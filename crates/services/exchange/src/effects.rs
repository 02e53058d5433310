//! What one step of the market changed — journal entries, orders, trades
//! with their settlements, accounts, listings, audit entries — and how it is written
//! in the caller's database transaction.

use crate::market::{side_name, tif_name, ListingView, Order, Settling};
use crate::Exchange;
use sqlx::AnyConnection;
use std::collections::BTreeMap;
use std::sync::Arc;
use tranche_crypto::Keypair;
use tranche_matching::InstrumentId;
use tranche_service::audit::{self, Entry};
use tranche_service::db::values;
use tranche_service::{now_ms, ServiceError};
use tranche_types::{Approval, Date, Leg, Payload, Settle, TokenId};

/// A row of `ex_orders` to write.
#[derive(Clone, Debug)]
pub(crate) struct OrderRow {
    pub order: Order,
    pub state: &'static str,
    pub reason: Option<String>,
    pub message: Option<String>,
}

/// A trade to write, with what its settlement needs.
#[derive(Clone, Debug)]
pub(crate) struct TradeRow {
    pub id: u64,
    pub instrument: InstrumentId,
    pub price: u64,
    pub settling: Settling,
    pub buy_order: u64,
    pub sell_order: u64,
    pub legs: Vec<Leg>,
    pub keys: Vec<Arc<Keypair>>,
}

/// Everything a step changed, for its database transaction.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    pub journal: Vec<(u64, String)>,
    pub orders: BTreeMap<u64, OrderRow>,
    pub trades: Vec<TradeRow>,
    pub cash: BTreeMap<(String, String), u128>,
    pub audit: Vec<Entry>,
    /// Listings whose state changed, with the token's last day.
    pub listings: BTreeMap<TokenId, (ListingView, Option<Date>)>,
}

impl Effects {
    /// Writes everything in the caller's transaction: the journal, the
    /// orders, the trades each with its settlement in the outbox, the
    /// accounts, and the audit entries. Returns whether a transaction was
    /// recorded.
    pub async fn write(
        self,
        ex: &Exchange,
        conn: &mut AnyConnection,
    ) -> Result<bool, ServiceError> {
        const ROWS: usize = 50;
        let s = &ex.service;
        let now = now_ms();
        for chunk in self.journal.chunks(ROWS) {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO ex_journal (seq, entry, at_ms) VALUES {}",
                values(&*conn, chunk.len(), 3)
            )));
            for (seq, entry) in chunk {
                q = q.bind(*seq as i64).bind(entry.clone()).bind(now as i64);
            }
            q.execute(&mut *conn).await?;
        }
        let orders: Vec<OrderRow> = self.orders.into_values().collect();
        for chunk in orders.chunks(ROWS) {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO ex_orders (id, did, client_id, instrument, side, price, quantity, open, filled,
                    tif, state, reason, message, reserved, at_ms) VALUES {}
                 ON CONFLICT (id) DO UPDATE SET price = excluded.price, quantity = excluded.quantity,
                    open = excluded.open, filled = excluded.filled, state = excluded.state,
                    reason = excluded.reason, message = excluded.message, reserved = excluded.reserved",
                values(&*conn, chunk.len(), 15)
            )));
            for r in chunk {
                let o = &r.order;
                q = q
                    .bind(o.id as i64)
                    .bind(o.did.clone())
                    .bind(o.client_id.clone())
                    .bind(o.instrument.to_string())
                    .bind(side_name(o.side))
                    .bind(o.price.map(|p| p.0 as i64))
                    .bind(o.quantity as i64)
                    .bind(o.open as i64)
                    .bind(o.filled as i64)
                    .bind(tif_name(o.tif))
                    .bind(r.state)
                    .bind(r.reason.clone())
                    .bind(r.message.clone())
                    .bind(o.reserved.to_string())
                    .bind(o.at_ms as i64);
            }
            q.execute(&mut *conn).await?;
        }
        let sent = !self.trades.is_empty();
        let signer = s.key.public_key();
        let chain_id = s.chain_id.clone();
        // Each settlement's approvals sign its nonce, so each is built once
        // the outbox gives it one; the lot is recorded together.
        let builds: Vec<_> = self
            .trades
            .iter()
            .map(|t| {
                let (legs, keys, chain_id) = (t.legs.clone(), t.keys.clone(), chain_id.clone());
                move |nonce| {
                    let digest = tranche_ledger::Ledger::settlement_digest(&signer, nonce, &legs);
                    let approvals = keys
                        .iter()
                        .map(|k| Approval {
                            key: k.public_key(),
                            signature: k.sign(
                                tranche_crypto::Domain::Transaction,
                                &chain_id,
                                &digest,
                            ),
                        })
                        .collect::<Vec<_>>();
                    Payload::Settle(Settle {
                        legs: tranche_types::BoundedVec(legs),
                        approvals: tranche_types::BoundedVec(approvals),
                    })
                }
            })
            .collect();
        let recorded = s.outbox.record_built_many(conn, builds, now).await?;
        let rows: Vec<_> = self
            .trades
            .into_iter()
            .zip(recorded)
            .map(|(t, (nonce, hash))| (t, nonce, hash))
            .collect();
        for chunk in rows.chunks(ROWS) {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO ex_trades (id, at_ms, instrument, token, quote, price, quantity, value,
                    buyer, seller, buy_order, sell_order, fee_buyer, fee_seller, state, nonce, tx) VALUES {}",
                values(&*conn, chunk.len(), 17)
            )));
            for (t, nonce, hash) in chunk {
                let st = &t.settling;
                q = q
                    .bind(t.id as i64)
                    .bind(now as i64)
                    .bind(t.instrument.to_string())
                    .bind(st.base.to_string())
                    .bind(serde_json::to_string(&st.quote).expect("assets serialize"))
                    .bind(t.price as i64)
                    .bind(st.quantity as i64)
                    .bind(st.value.to_string())
                    .bind(st.buyer.clone())
                    .bind(st.seller.clone())
                    .bind(t.buy_order as i64)
                    .bind(t.sell_order as i64)
                    .bind(st.fee_buyer.to_string())
                    .bind(st.fee_seller.to_string())
                    .bind("settling")
                    .bind(*nonce as i64)
                    .bind(hash.to_hex());
            }
            q.execute(&mut *conn).await?;
        }
        for ((did, currency), units) in self.cash {
            sqlx::query(
                "INSERT INTO ex_cash (did, currency, units) VALUES ($1, $2, $3)
                 ON CONFLICT (did, currency) DO UPDATE SET units = excluded.units",
            )
            .bind(did)
            .bind(currency)
            .bind(units.to_string())
            .execute(&mut *conn)
            .await?;
        }
        for (l, expiry) in self.listings.into_values() {
            sqlx::query(
                "INSERT INTO ex_listings (token, status, reason, height, tx, expiry, at_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (token) DO UPDATE SET status = excluded.status, reason = excluded.reason,
                    height = excluded.height, tx = excluded.tx",
            )
            .bind(l.token.clone())
            .bind(l.status.clone())
            .bind(l.reason.clone())
            .bind(l.height as i64)
            .bind(l.tx.clone())
            .bind(expiry.map(|d| d.to_string()))
            .bind(now as i64)
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "INSERT INTO ex_listing_history (token, height, status, reason, tx)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            )
            .bind(l.token)
            .bind(l.height as i64)
            .bind(l.status)
            .bind(l.reason)
            .bind(l.tx)
            .execute(&mut *conn)
            .await?;
        }
        audit::append_many(conn, now, self.audit).await?;
        Ok(sent)
    }
}
