//! The market rebuilt from the database after a start: traders and their
//! wallet keys, balances, listings, the books by replaying the journal
//! (checked against the open orders recorded), and the holds of open orders
//! and unsettled trades.

use crate::market::{Asset, JournalEntry, ListingView, Market, Order, Settling};
use crate::ExchangeSection;
use anyhow::Context as _;
use std::sync::Arc;
use tranche_crypto::Keypair;
use tranche_matching::{InstrumentId, OrderBook, Price, Side, TimeInForce};
use tranche_service::Service;
use tranche_types::{CountryCode, TokenId, WalletAddress, MS_PER_DAY};

/// A row of `ex_listings`: token, status, reason, height, tx, expiry.
type ListingDbRow = (String, String, String, i64, Option<String>, Option<String>);
/// An unsettled trade's row: id, buyer, seller, token, quote, quantity,
/// value and fees.
type SettlingDbRow = (
    i64,
    String,
    String,
    String,
    String,
    i64,
    String,
    String,
    String,
);

fn parse_tif(s: &str) -> Option<TimeInForce> {
    Some(match s {
        "gtc" => TimeInForce::Gtc,
        "ioc" => TimeInForce::Ioc,
        "fok" => TimeInForce::Fok,
        "post_only" => TimeInForce::PostOnly,
        _ => return None,
    })
}

impl Market {
    /// Rebuilds the market from the database: traders and their keys,
    /// balances, listings, the books from the journal, and the holds of
    /// open orders and unsettled trades.
    pub async fn load(service: &Service, policy: &ExchangeSection) -> anyhow::Result<Market> {
        let mut m = Market::empty(policy)?;
        let mut conn = service.db.pool().acquire().await?;
        let traders: Vec<(String, i64, String, String, Option<String>)> =
            sqlx::query_as("SELECT did, id, wallet, state, country FROM ex_traders")
                .fetch_all(&mut *conn)
                .await?;
        for (did, id, wallet, state, country) in traders {
            let seed = service
                .vault
                .get(&did, "wallet-key")
                .await?
                .ok_or_else(|| anyhow::anyhow!("the vault holds no wallet key for a trader"))?;
            let seed: [u8; 32] = seed.as_slice().try_into().map_err(|_| {
                anyhow::anyhow!("a trader's wallet key in the vault is not 32 bytes")
            })?;
            let key = Arc::new(Keypair::from_seed(&seed));
            let wallet: WalletAddress = wallet.parse()?;
            anyhow::ensure!(
                key.address() == wallet,
                "a trader's wallet key is not their wallet's"
            );
            let country = country.map(|c| CountryCode::new(&c)).transpose()?;
            m.add_trader(&did, id as u64, key, state == "active", country);
        }
        let balances: Vec<(String, String, String)> =
            sqlx::query_as("SELECT wallet, token, units FROM ex_wallet_balances")
                .fetch_all(&mut *conn)
                .await?;
        for (w, t, u) in balances {
            m.chain.insert((w.parse()?, TokenId::new(&t)?), u.parse()?);
        }
        let cash: Vec<(String, String, String)> =
            sqlx::query_as("SELECT did, currency, units FROM ex_cash")
                .fetch_all(&mut *conn)
                .await?;
        for (d, c, u) in cash {
            m.cash.insert((d, c), u.parse()?);
        }
        let listings: Vec<ListingDbRow> =
            sqlx::query_as("SELECT token, status, reason, height, tx, expiry FROM ex_listings")
                .fetch_all(&mut *conn)
                .await?;
        for (token, status, reason, height, tx, expiry) in listings {
            if let Some(d) = expiry {
                m.expiries.insert(TokenId::new(&token)?, d.parse()?);
            }
            m.listings.insert(
                TokenId::new(&token)?,
                ListingView {
                    token,
                    status,
                    reason,
                    height: height as u64,
                    tx,
                    instruments: Vec::new(),
                },
            );
        }
        // The books: every journaled command again, in order.
        let journal: Vec<(i64, String)> =
            sqlx::query_as("SELECT seq, entry FROM ex_journal ORDER BY seq")
                .fetch_all(&mut *conn)
                .await?;
        let mut events = Vec::new();
        for (seq, entry) in journal {
            let entry: JournalEntry = serde_json::from_str(&entry)?;
            match entry {
                JournalEntry::List(spec) => m.list_spec(spec)?,
                JournalEntry::Execute {
                    instrument,
                    command,
                } => {
                    events.clear();
                    m.engine.execute(&instrument, &command, &mut events);
                }
            }
            m.next_seq = seq as u64 + 1;
        }
        for l in m.listings.values_mut() {
            l.instruments = m
                .pairs
                .iter()
                .filter(|(_, p)| p.base.as_str() == l.token)
                .map(|(i, _)| i.to_string())
                .collect();
        }
        type OrderDbRow = (
            i64,
            String,
            Option<String>,
            String,
            String,
            Option<i64>,
            i64,
            i64,
            i64,
            String,
            String,
            i64,
        );
        let open: Vec<OrderDbRow> = sqlx::query_as(
            "SELECT id, did, client_id, instrument, side, price, quantity, open, filled, tif, reserved, at_ms
             FROM ex_orders WHERE state = 'open'",
        )
        .fetch_all(&mut *conn)
        .await?;
        for r in open {
            let instrument = InstrumentId::new(&r.3)?;
            let pair = m
                .pairs
                .get(&instrument)
                .ok_or_else(|| anyhow::anyhow!("an open order of an instrument never listed"))?;
            let side = if r.4 == "buy" { Side::Buy } else { Side::Sell };
            let asset = match side {
                Side::Buy => pair.quote.clone(),
                Side::Sell => Asset::Token(pair.base.clone()),
            };
            let o = Order {
                id: r.0 as u64,
                did: r.1,
                client_id: r.2,
                instrument,
                side,
                price: r.5.map(|p| Price(p as u64)),
                quantity: r.6 as u64,
                open: r.7 as u64,
                filled: r.8 as u64,
                tif: parse_tif(&r.9).ok_or_else(|| anyhow::anyhow!("an order's tif {}", r.9))?,
                reserved: r.10.parse()?,
                asset,
                at_ms: r.11 as u64,
            };
            *m.held.entry((o.did.clone(), o.asset.clone())).or_default() += o.reserved;
            if let Some(c) = &o.client_id {
                m.client_ids.insert((o.did.clone(), c.clone()));
            }
            m.orders.insert(o.id, o);
        }
        // The books rebuilt and the open orders recorded must be the same.
        let mut resting = 0;
        for (id, _) in m.pairs.iter() {
            let Some(book) = m.engine.book(id) else {
                continue;
            };
            let snap = book.snapshot();
            for r in snap.bids.iter().chain(snap.asks.iter()) {
                resting += 1;
                let known = m.orders.get(&r.id.0);
                anyhow::ensure!(
                    known.is_some_and(|o| o.open == r.quantity.0 && o.instrument == *id),
                    "order {} rests on {id} after the journal's replay but is not open in the orders table",
                    r.id
                );
            }
        }
        anyhow::ensure!(
            resting == m.orders.len(),
            "{} orders are open in the orders table but {resting} rest on the books",
            m.orders.len()
        );
        let settling: Vec<SettlingDbRow> = sqlx::query_as(
            "SELECT id, buyer, seller, token, quote, quantity, value, fee_buyer, fee_seller
                 FROM ex_trades WHERE state = 'settling'",
        )
        .fetch_all(&mut *conn)
        .await?;
        for r in settling {
            let quote: Asset = serde_json::from_str(&r.4)?;
            let s = Settling {
                buyer: r.1,
                seller: r.2,
                base: TokenId::new(&r.3)?,
                quote,
                quantity: r.5 as u64,
                value: r.6.parse()?,
                fee_buyer: r.7.parse()?,
                fee_seller: r.8.parse()?,
            };
            m.hold_settling(&s);
            m.settling.insert(r.0 as u64, s);
        }
        let (orders, trades): (Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT (SELECT MAX(id) FROM ex_orders), (SELECT MAX(id) FROM ex_trades)",
        )
        .fetch_one(&mut *conn)
        .await?;
        m.next_order = orders.map_or(1, |n| n as u64 + 1);
        m.next_trade = trades.map_or(1, |n| n as u64 + 1);
        m.applied_height = tranche_service::follower::cursor(&mut conn).await?;
        // The AML policy's versions (the chain keeps them), and what each
        // identity committed to today against its daily limits.
        let versions = service
            .node
            .aml_policy()
            .await
            .context("reading the AML policy from the node")?
            .data
            .versions;
        for v in versions {
            m.aml.insert(v.version, (v.effective_height, v.policy));
        }
        let day = tranche_service::now_ms() / MS_PER_DAY;
        let since = (day * MS_PER_DAY) as i64;
        let limits: Vec<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT did, instrument, price, quantity FROM ex_orders WHERE at_ms >= $1 AND price IS NOT NULL",
        )
        .bind(since)
        .fetch_all(&mut *conn)
        .await?;
        for (did, instrument, price, quantity) in limits {
            let quote = instrument.split_once('/').map_or("", |(_, q)| q);
            m.commit(&did, quote, day, price as u128 * quantity as u128);
        }
        let markets: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT o.did, o.instrument, t.value FROM ex_orders o
             JOIN ex_trades t ON t.buy_order = o.id OR t.sell_order = o.id
             WHERE o.at_ms >= $1 AND o.price IS NULL",
        )
        .bind(since)
        .fetch_all(&mut *conn)
        .await?;
        for (did, instrument, value) in markets {
            let quote = instrument.split_once('/').map_or("", |(_, q)| q);
            m.commit(&did, quote, day, value.parse()?);
        }
        Ok(m)
    }
}
