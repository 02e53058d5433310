//! The exchange's state in memory: the books (the pure matching engine),
//! the listings, the traders and their wallet keys, balances on chain and
//! in the exchange's ledger, and what open orders and unsettled trades
//! hold. Every change is also an [`Effects`] the caller writes in one
//! database transaction; after a restart [`Market::load`] rebuilds it all
//! from the database, the books by replaying the journal.

use crate::{Exchange, ExchangeSection};
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tranche_crypto::Keypair;
use tranche_matching::{
    BookStatus, Command, Event, InstrumentId, InstrumentSpec, Level, MatchingEngine, OrderBook,
    Price, Qty, Quote, Side, TimeInForce,
};
use tranche_service::audit::{self, Entry};
use tranche_service::db::values;
use tranche_service::{now_ms, Service, ServiceError};
use tranche_types::{
    Approval, Currency, Date, Leg, OrderId, Payload, Settle, TokenId, Units, WalletAddress,
};

/// What a balance or hold is in: a token on chain (security or cash), or
/// a currency in the exchange's own ledger.
/// In JSON: `{"kind":"token","id":"ACME"}` or `{"kind":"currency","id":"USD"}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Asset {
    /// A token in the trader's wallet on chain.
    Token(TokenId),
    /// A currency in the trader's account at the exchange.
    Currency(String),
}

impl std::fmt::Display for Asset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Asset::Token(t) => write!(f, "{t}"),
            Asset::Currency(c) => write!(f, "{c}"),
        }
    }
}

/// The account the exchange's fees are credited to.
pub const FEES: &str = "exchange:fees";

/// A listed token's state, and the on-chain event that last changed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ListingView {
    /// The token.
    pub token: String,
    /// `listed`, `halted` or `delisted`.
    pub status: String,
    /// What caused it: `issued 1000 of 1000 requested`, `paused`,
    /// `resumed`, `revoked`, `expired`.
    pub reason: String,
    /// The block that carried the event.
    pub height: u64,
    /// The transaction, if one caused it.
    pub tx: Option<String>,
    /// Its instruments, e.g. `ACME/USD`.
    pub instruments: Vec<String>,
}

/// An instrument's book as market data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BookView {
    /// `BASE/QUOTE`.
    pub instrument: String,
    /// `open`, `halted` or `delisted`.
    pub status: String,
    /// Bids, best first: price, quantity, orders.
    #[schema(value_type = Vec<Object>)]
    pub bids: Vec<Level>,
    /// Asks, best first.
    #[schema(value_type = Vec<Object>)]
    pub asks: Vec<Level>,
    /// The last trade's price and quantity.
    pub last_trade: Option<(u64, u64)>,
}

/// A listed instrument.
#[derive(Clone, Debug)]
pub(crate) struct Pair {
    pub base: TokenId,
    pub quote: Asset,
}

/// A trader, as the market needs them.
#[derive(Clone, Debug)]
pub(crate) struct Trader {
    pub id: u64,
    pub wallet: WalletAddress,
    pub key: Arc<Keypair>,
    pub active: bool,
}

/// An order on a book or on its way there.
#[derive(Clone, Debug)]
pub(crate) struct Order {
    pub id: u64,
    pub did: String,
    pub client_id: Option<String>,
    pub instrument: InstrumentId,
    pub side: Side,
    pub price: Option<Price>,
    pub quantity: u64,
    pub open: u64,
    pub filled: u64,
    pub tif: TimeInForce,
    /// What the order still holds of the trader's `asset`.
    pub reserved: u128,
    pub asset: Asset,
    pub at_ms: u64,
}

/// What an unsettled trade holds, released when the chain decides it.
#[derive(Clone, Debug)]
pub(crate) struct Settling {
    pub buyer: String,
    pub seller: String,
    pub base: TokenId,
    pub quote: Asset,
    pub quantity: u64,
    pub value: u128,
    pub fee_buyer: u128,
    pub fee_seller: u128,
}

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
}

/// One journal entry: a listing or a command for a book.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum JournalEntry {
    List(InstrumentSpec),
    Execute {
        instrument: InstrumentId,
        command: Command,
    },
}

/// Why the market refuses an order before its book sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub code: &'static str,
    pub message: String,
}

pub(crate) fn refusal(code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        message: message.into(),
    }
}

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

/// The books and balances.
#[derive(Debug)]
pub(crate) struct Market {
    engine: MatchingEngine,
    pub pairs: BTreeMap<InstrumentId, Pair>,
    pub listings: BTreeMap<TokenId, ListingView>,
    pub orders: HashMap<u64, Order>,
    pub traders: HashMap<String, Trader>,
    pub by_id: HashMap<u64, String>,
    pub wallets: HashMap<WalletAddress, String>,
    pub chain: HashMap<(WalletAddress, TokenId), u128>,
    pub cash: HashMap<(String, String), u128>,
    pub held: HashMap<(String, Asset), u128>,
    pub settling: HashMap<u64, Settling>,
    /// Client order ids of orders placed since the start or still open.
    pub client_ids: std::collections::HashSet<(String, String)>,
    /// The listed tokens' last day (L-3): delisted after it.
    pub expiries: BTreeMap<TokenId, Date>,
    /// The last block whose effects the market carries.
    pub applied_height: u64,
    pub next_order: u64,
    pub next_trade: u64,
    pub next_seq: u64,
    currencies: Vec<Currency>,
    quote_tokens: Vec<TokenId>,
    fee_bps: u32,
}

/// `value × bps / 10,000`, rounded down.
pub(crate) fn fee(value: u128, bps: u32) -> u128 {
    value.saturating_mul(u128::from(bps)) / 10_000
}

fn side_name(s: Side) -> &'static str {
    match s {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

pub(crate) fn tif_name(t: TimeInForce) -> &'static str {
    match t {
        TimeInForce::Gtc => "gtc",
        TimeInForce::Ioc => "ioc",
        TimeInForce::Fok => "fok",
        TimeInForce::PostOnly => "post_only",
    }
}

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
    fn empty(policy: &ExchangeSection) -> anyhow::Result<Market> {
        Ok(Market {
            engine: MatchingEngine::new(),
            pairs: BTreeMap::new(),
            listings: BTreeMap::new(),
            orders: HashMap::new(),
            traders: HashMap::new(),
            by_id: HashMap::new(),
            wallets: HashMap::new(),
            chain: HashMap::new(),
            cash: HashMap::new(),
            held: HashMap::new(),
            settling: HashMap::new(),
            client_ids: std::collections::HashSet::new(),
            expiries: BTreeMap::new(),
            applied_height: 0,
            next_order: 1,
            next_trade: 1,
            next_seq: 1,
            currencies: policy.currencies()?,
            quote_tokens: policy.quote_tokens.clone(),
            fee_bps: policy.fee_bps,
        })
    }

    /// Rebuilds the market from the database: traders and their keys,
    /// balances, listings, the books from the journal, and the holds of
    /// open orders and unsettled trades.
    pub async fn load(service: &Service, policy: &ExchangeSection) -> anyhow::Result<Market> {
        let mut m = Market::empty(policy)?;
        let mut conn = service.db.pool().acquire().await?;
        let traders: Vec<(String, i64, String, String)> =
            sqlx::query_as("SELECT did, id, wallet, state FROM ex_traders")
                .fetch_all(&mut *conn)
                .await?;
        for (did, id, wallet, state) in traders {
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
            m.add_trader(&did, id as u64, key, state == "active");
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
        Ok(m)
    }

    fn hold_settling(&mut self, s: &Settling) {
        *self
            .held
            .entry((s.seller.clone(), Asset::Token(s.base.clone())))
            .or_default() += u128::from(s.quantity);
        *self
            .held
            .entry((s.buyer.clone(), s.quote.clone()))
            .or_default() += s.value + s.fee_buyer;
    }

    fn release(&mut self, did: &str, asset: &Asset, amount: u128) {
        if amount == 0 {
            return;
        }
        let key = (did.to_string(), asset.clone());
        let h = self.held.get_mut(&key).expect("a release follows a hold");
        *h = h
            .checked_sub(amount)
            .expect("a release is at most what is held");
        if *h == 0 {
            self.held.remove(&key);
        }
    }

    pub fn add_trader(&mut self, did: &str, id: u64, key: Arc<Keypair>, active: bool) {
        self.wallets.insert(key.address(), did.to_string());
        self.by_id.insert(id, did.to_string());
        self.traders.insert(
            did.to_string(),
            Trader {
                id,
                wallet: key.address(),
                key,
                active,
            },
        );
    }

    /// What `did` holds of `asset`: the wallet's balance on chain, or the
    /// account at the exchange.
    pub fn balance(&self, did: &str, asset: &Asset) -> u128 {
        match asset {
            Asset::Token(t) => self.traders.get(did).map_or(0, |tr| {
                self.chain
                    .get(&(tr.wallet, t.clone()))
                    .copied()
                    .unwrap_or(0)
            }),
            Asset::Currency(c) => self
                .cash
                .get(&(did.to_string(), c.clone()))
                .copied()
                .unwrap_or(0),
        }
    }

    /// What open orders and unsettled trades hold of `did`'s `asset`.
    pub fn held(&self, did: &str, asset: &Asset) -> u128 {
        self.held
            .get(&(did.to_string(), asset.clone()))
            .copied()
            .unwrap_or(0)
    }

    /// What `did` may still commit of `asset`.
    pub fn free(&self, did: &str, asset: &Asset) -> u128 {
        self.balance(did, asset)
            .saturating_sub(self.held(did, asset))
    }

    /// The quotes every listed token trades against.
    pub fn quotes(&self) -> Vec<(Asset, Quote)> {
        let mut q: Vec<(Asset, Quote)> = self
            .currencies
            .iter()
            .map(|c| {
                (
                    Asset::Currency(c.code().to_string()),
                    Quote::Currency(c.clone()),
                )
            })
            .collect();
        q.extend(
            self.quote_tokens
                .iter()
                .map(|t| (Asset::Token(t.clone()), Quote::Token(t.clone()))),
        );
        q
    }

    fn list_spec(&mut self, spec: InstrumentSpec) -> anyhow::Result<()> {
        let quote = match &spec.quote {
            Quote::Currency(c) => Asset::Currency(c.code().to_string()),
            Quote::Token(t) => Asset::Token(t.clone()),
        };
        let base = spec.base.clone();
        let id = self.engine.list(spec).map_err(|e| anyhow::anyhow!("{e}"))?;
        self.pairs.insert(id, Pair { base, quote });
        Ok(())
    }

    fn journal(&mut self, entry: &JournalEntry, fx: &mut Effects) {
        let text = serde_json::to_string(entry).expect("journal entries serialize");
        fx.journal.push((self.next_seq, text));
        self.next_seq += 1;
    }

    /// Lists `token` against every quote (F6-2), once its issuance checks
    /// out; a token already listed keeps its books.
    pub fn list(
        &mut self,
        token: &TokenId,
        reason: String,
        height: u64,
        tx: Option<String>,
        fx: &mut Effects,
    ) {
        if self.listings.contains_key(token) {
            return;
        }
        let mut instruments = Vec::new();
        for (_, quote) in self.quotes() {
            if matches!(&quote, Quote::Token(t) if t == token) {
                continue;
            }
            let spec = InstrumentSpec::new(token.clone(), quote);
            instruments.push(spec.symbol());
            let entry = JournalEntry::List(spec.clone());
            if self.list_spec(spec).is_ok() {
                self.journal(&entry, fx);
            }
        }
        self.listings.insert(
            token.clone(),
            ListingView {
                token: token.to_string(),
                status: "listed".into(),
                reason: reason.clone(),
                height,
                tx: tx.clone(),
                instruments,
            },
        );
        fx.audit.push(Entry::by_chain(
            "service",
            "list",
            format!("token/{token}"),
            reason,
        ));
    }

    /// Halts, resumes or delists `token`'s books for `reason`.
    pub fn set_status(
        &mut self,
        token: &TokenId,
        status: BookStatus,
        reason: &str,
        height: u64,
        tx: Option<String>,
        fx: &mut Effects,
    ) {
        let Some(listing) = self.listings.get(token) else {
            return;
        };
        let now = match listing.status.as_str() {
            "halted" => BookStatus::Halted,
            "delisted" => BookStatus::Delisted,
            _ => BookStatus::Open,
        };
        if now == status || now == BookStatus::Delisted {
            return;
        }
        let command = match status {
            BookStatus::Open => Command::Resume,
            BookStatus::Halted => Command::Halt,
            BookStatus::Delisted => Command::Delist,
        };
        let instruments: Vec<InstrumentId> = self
            .pairs
            .iter()
            .filter(|(_, p)| &p.base == token)
            .map(|(i, _)| i.clone())
            .collect();
        for i in instruments {
            let _ = self.execute(&i, command.clone(), None, fx);
        }
        let name = match status {
            BookStatus::Open => "listed",
            BookStatus::Halted => "halted",
            BookStatus::Delisted => "delisted",
        };
        if let Some(l) = self.listings.get_mut(token) {
            l.status = name.into();
            l.reason = reason.into();
            l.height = height;
            l.tx = tx;
        }
        fx.audit.push(Entry::by_chain(
            "service",
            name,
            format!("token/{token}"),
            reason.into(),
        ));
    }

    /// Runs `command` on `instrument`'s book, journaled, and carries out
    /// what it did: fills, trades and their holds, cancellations and their
    /// releases. `submitted` is the order a submit or amend concerns.
    /// Returns the engine's refusal of the command, if it refused it.
    pub fn execute(
        &mut self,
        instrument: &InstrumentId,
        command: Command,
        submitted: Option<u64>,
        fx: &mut Effects,
    ) -> Option<tranche_matching::OrderReject> {
        let entry = JournalEntry::Execute {
            instrument: instrument.clone(),
            command,
        };
        let JournalEntry::Execute { command, .. } = &entry else {
            unreachable!("just built")
        };
        let mut events = Vec::new();
        self.engine.execute(instrument, command, &mut events);
        let mut refused = None;
        let is_submit = matches!(command, Command::Submit(_));
        self.journal(&entry, fx);
        for e in events {
            match e {
                Event::Accepted { .. } | Event::Amended { .. } | Event::Status { .. } => {}
                Event::Rejected { reason, .. } => {
                    refused = Some(reason);
                    if is_submit {
                        if let Some(id) = submitted {
                            self.end(
                                id,
                                "rejected",
                                Some(reason.name().to_lowercase()),
                                Some(reason.message().into()),
                                fx,
                            );
                        }
                    }
                }
                Event::Trade {
                    maker,
                    taker,
                    taker_side,
                    price,
                    quantity,
                    ..
                } => self.trade(instrument, maker, taker, taker_side, price, quantity, fx),
                Event::Cancelled { order, reason, .. } => {
                    let why = serde_json::to_value(reason)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string));
                    self.end(order.0, "cancelled", why, None, fx);
                }
                Event::Done { order } => self.end(order.0, "filled", None, None, fx),
            }
        }
        if let Command::Amend {
            order,
            quantity,
            price,
            ..
        } = command
        {
            if refused.is_none() {
                if let Some(o) = self.orders.get_mut(&order.0) {
                    o.quantity = o.quantity - o.open + quantity.0;
                    o.open = quantity.0;
                    if price.is_some() {
                        o.price = *price;
                    }
                    let row = OrderRow {
                        order: o.clone(),
                        state: "open",
                        reason: None,
                        message: None,
                    };
                    fx.orders.insert(order.0, row);
                }
            }
        }
        if is_submit && refused.is_none() {
            if let Some(o) = submitted.and_then(|id| self.orders.get(&id)) {
                fx.orders.insert(
                    o.id,
                    OrderRow {
                        order: o.clone(),
                        state: "open",
                        reason: None,
                        message: None,
                    },
                );
            }
        }
        refused
    }

    /// An order leaves the books: what it still holds is released.
    fn end(
        &mut self,
        id: u64,
        state: &'static str,
        reason: Option<String>,
        message: Option<String>,
        fx: &mut Effects,
    ) {
        let Some(o) = self.orders.remove(&id) else {
            return;
        };
        self.release(&o.did, &o.asset, o.reserved);
        let mut order = o;
        order.reserved = 0;
        if state == "cancelled" || state == "rejected" {
            order.open = 0;
        }
        fx.orders.insert(
            id,
            OrderRow {
                order,
                state,
                reason,
                message,
            },
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn trade(
        &mut self,
        instrument: &InstrumentId,
        maker: OrderId,
        taker: OrderId,
        taker_side: Side,
        price: Price,
        quantity: Qty,
        fx: &mut Effects,
    ) {
        let pair = self
            .pairs
            .get(instrument)
            .expect("a trade is on a listed instrument")
            .clone();
        let (buy, sell) = match taker_side {
            Side::Buy => (taker.0, maker.0),
            Side::Sell => (maker.0, taker.0),
        };
        let q = quantity.0;
        let value = u128::from(price.0) * u128::from(q);
        let (fee_buyer, fee_seller) = match pair.quote {
            Asset::Currency(_) => (fee(value, self.fee_bps), fee(value, self.fee_bps)),
            Asset::Token(_) => (0, 0),
        };
        let buyer = {
            let o = self
                .orders
                .get_mut(&buy)
                .expect("a trade's buy order is open");
            o.open -= q;
            o.filled += q;
            o.reserved = o
                .reserved
                .checked_sub(value + fee_buyer)
                .expect("a buy order holds what it trades at its limit");
            fx.orders.insert(
                buy,
                OrderRow {
                    order: o.clone(),
                    state: "open",
                    reason: None,
                    message: None,
                },
            );
            o.did.clone()
        };
        let seller = {
            let o = self
                .orders
                .get_mut(&sell)
                .expect("a trade's sell order is open");
            o.open -= q;
            o.filled += q;
            o.reserved = o
                .reserved
                .checked_sub(u128::from(q))
                .expect("a sell order holds what it sells");
            fx.orders.insert(
                sell,
                OrderRow {
                    order: o.clone(),
                    state: "open",
                    reason: None,
                    message: None,
                },
            );
            o.did.clone()
        };
        // The order's hold becomes the trade's, until the chain decides.
        let s = Settling {
            buyer: buyer.clone(),
            seller: seller.clone(),
            base: pair.base.clone(),
            quote: pair.quote.clone(),
            quantity: q,
            value,
            fee_buyer,
            fee_seller,
        };
        let (b, sl) = (&self.traders[&buyer], &self.traders[&seller]);
        let mut legs = vec![Leg {
            token: pair.base.clone(),
            from: sl.wallet,
            to: b.wallet,
            amount: Units(u128::from(q)),
        }];
        let mut keys = vec![Arc::clone(&sl.key)];
        if let Asset::Token(t) = &pair.quote {
            legs.push(Leg {
                token: t.clone(),
                from: b.wallet,
                to: sl.wallet,
                amount: Units(value),
            });
            keys.push(Arc::clone(&b.key));
        }
        let id = self.next_trade;
        self.next_trade += 1;
        self.settling.insert(id, s.clone());
        fx.trades.push(TradeRow {
            id,
            instrument: instrument.clone(),
            price: price.0,
            settling: s,
            buy_order: buy,
            sell_order: sell,
            legs,
            keys,
        });
    }

    /// The chain decided trade `id`'s settlement: its holds are released;
    /// if it was applied, the legs in the exchange's ledger move now.
    pub fn settled(&mut self, id: u64, applied: bool, fx: &mut Effects) {
        let Some(s) = self.settling.remove(&id) else {
            return;
        };
        self.release(
            &s.seller,
            &Asset::Token(s.base.clone()),
            u128::from(s.quantity),
        );
        self.release(&s.buyer, &s.quote, s.value + s.fee_buyer);
        if !applied {
            return;
        }
        if let Asset::Currency(c) = &s.quote {
            let mut add = |did: &str, delta: i128| {
                let key = (did.to_string(), c.clone());
                let now = self.cash.get(&key).copied().unwrap_or(0);
                let after = if delta >= 0 {
                    now + delta.unsigned_abs()
                } else {
                    now.checked_sub(delta.unsigned_abs())
                        .expect("a buyer's account held what the trade costs")
                };
                self.cash.insert(key.clone(), after);
                fx.cash.insert(key, after);
            };
            let paid = (s.value + s.fee_buyer) as i128;
            add(&s.buyer, -paid);
            add(&s.seller, (s.value - s.fee_seller) as i128);
            add(FEES, (s.fee_buyer + s.fee_seller) as i128);
        }
    }

    /// Notes a movement of a trader's wallet seen on chain.
    pub fn moved(
        &mut self,
        wallet: WalletAddress,
        token: &TokenId,
        amount: u128,
        incoming: bool,
    ) -> Option<u128> {
        if !self.wallets.contains_key(&wallet) {
            return None;
        }
        let key = (wallet, token.clone());
        let now = self.chain.get(&key).copied().unwrap_or(0);
        let after = if incoming {
            now.saturating_add(amount)
        } else {
            now.saturating_sub(amount)
        };
        self.chain.insert(key, after);
        Some(after)
    }

    /// Credits (`amount` > 0) or debits a trader's account at the exchange.
    pub fn adjust_cash(
        &mut self,
        did: &str,
        currency: &str,
        credit: bool,
        amount: u128,
        fx: &mut Effects,
    ) -> Result<u128, Refusal> {
        let key = (did.to_string(), currency.to_string());
        let now = self.cash.get(&key).copied().unwrap_or(0);
        let after = if credit {
            now.checked_add(amount)
                .ok_or_else(|| refusal("overflow", "the account would overflow"))?
        } else {
            let free = self.free(did, &Asset::Currency(currency.to_string()));
            if free < amount {
                return Err(refusal(
                    "insufficient_funds",
                    format!("the account holds {free} {currency} free of open orders and unsettled trades; {amount} were to be debited"),
                ));
            }
            now - amount
        };
        self.cash.insert(key.clone(), after);
        fx.cash.insert(key, after);
        Ok(after)
    }

    /// The book of `instrument` as market data, `depth` levels a side.
    pub fn book(&self, instrument: &InstrumentId, depth: usize) -> Option<BookView> {
        let b = self.engine.book(instrument)?;
        Some(BookView {
            instrument: instrument.to_string(),
            status: match b.status() {
                BookStatus::Open => "open",
                BookStatus::Halted => "halted",
                BookStatus::Delisted => "delisted",
            }
            .into(),
            bids: b.depth(Side::Buy, depth),
            asks: b.depth(Side::Sell, depth),
            last_trade: b.last_trade().map(|(p, q)| (p.0, q.0)),
        })
    }

    /// What a market buy of `quantity` would cost now at most: the asks
    /// it would take, best first.
    pub fn market_cost(&self, instrument: &InstrumentId, quantity: u64) -> Option<u128> {
        let b = self.engine.book(instrument)?;
        let mut left = quantity;
        let mut cost: u128 = 0;
        for l in b.depth(Side::Sell, usize::MAX) {
            let take = left.min(l.quantity.0);
            cost += u128::from(take) * u128::from(l.price.0);
            left -= take;
            if left == 0 {
                break;
            }
        }
        Some(cost)
    }

    /// The fee rate on `instrument`'s quote.
    pub fn fee_on(&self, quote: &Asset) -> u32 {
        match quote {
            Asset::Currency(_) => self.fee_bps,
            Asset::Token(_) => 0,
        }
    }
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
                values(chunk.len(), 3)
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
                values(chunk.len(), 15)
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
        let mut rows = Vec::with_capacity(self.trades.len());
        for t in self.trades {
            let legs = t.legs.clone();
            let keys = t.keys.clone();
            let chain_id = chain_id.clone();
            let (nonce, hash) = s
                .outbox
                .record_built(
                    conn,
                    move |nonce| {
                        let digest =
                            tranche_ledger::Ledger::settlement_digest(&signer, nonce, &legs);
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
                    },
                    now,
                )
                .await?;
            rows.push((t, nonce, hash));
        }
        for chunk in rows.chunks(ROWS) {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO ex_trades (id, at_ms, instrument, token, quote, price, quantity, value,
                    buyer, seller, buy_order, sell_order, fee_buyer, fee_seller, state, nonce, tx) VALUES {}",
                values(chunk.len(), 17)
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
        for e in self.audit {
            audit::append(conn, now, e).await?;
        }
        Ok(sent)
    }
}

#[cfg(test)]
mod tests {
    use super::fee;

    #[test]
    fn a_fee_on_the_whole_covers_the_fees_on_its_parts() {
        // An order holds the fee on its whole value; its fills pay the fee on
        // each part, which never adds up to more.
        for (a, b) in [(999u128, 1u128), (12_345, 67_891), (1, 1), (10_001, 9_999)] {
            assert!(fee(a, 10) + fee(b, 10) <= fee(a + b, 10));
        }
        assert_eq!(fee(10_000, 10), 10);
        assert_eq!(fee(9_999, 10), 9);
    }
}
