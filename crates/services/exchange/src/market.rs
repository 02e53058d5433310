//! The exchange's state in memory: the books (the pure matching engine),
//! the listings, the traders and their wallet keys, balances on chain and
//! in the exchange's ledger, and what open orders and unsettled trades
//! hold. Every change is also an [`Effects`] the caller writes in one
//! database transaction; after a restart `Market::load` (in `restore`)
//! rebuilds it all from the database, the books by replaying the journal.

pub(crate) use crate::effects::{Effects, OrderRow, TradeRow};
use crate::ExchangeSection;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tranche_crypto::Keypair;
use tranche_matching::{
    BookStatus, Command, Event, InstrumentId, InstrumentSpec, Level, MatchingEngine, OrderBook,
    Price, Quote, Side, TimeInForce,
};
use tranche_service::audit::Entry;
use tranche_types::{AmlPolicy, CountryCode, Currency, Date, TokenId, Units, WalletAddress};

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
    /// Where they live, as their jurisdiction credential said (F6-1).
    pub country: Option<CountryCode>,
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

/// One journal entry: a listing or a command for a book.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum JournalEntry {
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

/// The books and balances.
#[derive(Debug)]
pub(crate) struct Market {
    pub engine: MatchingEngine,
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
    /// The AML policy's versions by number: the first block each governs,
    /// and the policy (F6-1).
    pub aml: BTreeMap<u32, (u64, AmlPolicy)>,
    /// What each identity committed to in orders on a UTC day, by
    /// (DID, quote): the day and the value, for the policy's daily limits.
    pub committed: HashMap<(String, String), (u64, u128)>,
    pub next_order: u64,
    pub next_trade: u64,
    pub next_seq: u64,
    currencies: Vec<Currency>,
    quote_tokens: Vec<TokenId>,
    pub(crate) fee_bps: u32,
}

/// `value × bps / 10,000`, rounded down.
pub(crate) fn fee(value: u128, bps: u32) -> u128 {
    value.saturating_mul(u128::from(bps)) / 10_000
}

pub(crate) fn side_name(s: Side) -> &'static str {
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

impl Market {
    pub(crate) fn empty(policy: &ExchangeSection) -> anyhow::Result<Market> {
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
            aml: BTreeMap::new(),
            committed: HashMap::new(),
            next_order: 1,
            next_trade: 1,
            next_seq: 1,
            currencies: policy.currencies()?,
            quote_tokens: policy.quote_tokens.clone(),
            fee_bps: policy.fee_bps,
        })
    }

    pub(crate) fn hold_settling(&mut self, s: &Settling) {
        *self
            .held
            .entry((s.seller.clone(), Asset::Token(s.base.clone())))
            .or_default() += u128::from(s.quantity);
        *self
            .held
            .entry((s.buyer.clone(), s.quote.clone()))
            .or_default() += s.value + s.fee_buyer;
    }

    pub(crate) fn release(&mut self, did: &str, asset: &Asset, amount: u128) {
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

    pub fn add_trader(
        &mut self,
        did: &str,
        id: u64,
        key: Arc<Keypair>,
        active: bool,
        country: Option<CountryCode>,
    ) {
        self.wallets.insert(key.address(), did.to_string());
        self.by_id.insert(id, did.to_string());
        self.traders.insert(
            did.to_string(),
            Trader {
                id,
                wallet: key.address(),
                key,
                active,
                country,
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

    /// `did`'s `asset`: balance, held and free.
    pub fn account(&self, did: &str, asset: Asset) -> crate::AccountView {
        crate::AccountView {
            balance: Units(self.balance(did, &asset)),
            held: Units(self.held(did, &asset)),
            free: Units(self.free(did, &asset)),
            asset,
        }
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

    pub(crate) fn list_spec(&mut self, spec: InstrumentSpec) -> anyhow::Result<()> {
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
        self.note_listing(token, fx);
    }

    /// Puts `token`'s listing as it now stands among what `fx` writes.
    fn note_listing(&self, token: &TokenId, fx: &mut Effects) {
        if let Some(l) = self.listings.get(token) {
            fx.listings.insert(
                token.clone(),
                (l.clone(), self.expiries.get(token).copied()),
            );
        }
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
        self.note_listing(token, fx);
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

    /// What a market sell of `quantity` would fetch now at most: the bids
    /// it would take, best first.
    pub fn market_proceeds(&self, instrument: &InstrumentId, quantity: u64) -> u128 {
        let Some(b) = self.engine.book(instrument) else {
            return 0;
        };
        let mut left = quantity;
        let mut value: u128 = 0;
        for l in b.depth(Side::Buy, usize::MAX) {
            let take = left.min(l.quantity.0);
            value += u128::from(take) * u128::from(l.price.0);
            left -= take;
            if left == 0 {
                break;
            }
        }
        value
    }

    /// The AML policy governing the next block the exchange sees, if the
    /// regulator published one (F6-1): its rules apply beside the
    /// exchange's own limits per order, and its reporting period replaces
    /// the configured one.
    pub fn aml_policy(&self) -> Option<&AmlPolicy> {
        let next = self.applied_height + 1;
        self.aml
            .values()
            .rev()
            .find(|(from, _)| *from <= next)
            .map(|(_, p)| p)
    }

    /// Cancels the open orders of every trader the AML policy in force
    /// bars (sanctioned, or resident where it blocks), on the record.
    pub fn cancel_barred(&mut self, fx: &mut Effects) {
        let Some(policy) = self.aml_policy() else {
            return;
        };
        let mut barred: Vec<(u64, InstrumentId, u64, String)> = self
            .orders
            .values()
            .filter(|o| o.open > 0)
            .filter_map(|o| {
                let t = self.traders.get(&o.did)?;
                let blocked = t.country.is_some_and(|c| policy.is_blocked(&c));
                (policy.is_sanctioned(&o.did) || blocked)
                    .then(|| (o.id, o.instrument.clone(), t.id, o.did.clone()))
            })
            .collect();
        barred.sort_by_key(|(id, ..)| *id);
        for (id, instrument, trader, did) in barred {
            let cancel = Command::Cancel {
                order: tranche_types::OrderId(id),
                trader: tranche_matching::TraderId(trader),
            };
            if self.execute(&instrument, cancel, Some(id), fx).is_none() {
                fx.audit.push(Entry {
                    actor: "service".into(),
                    authority: "aml-policy".into(),
                    action: "cancel".into(),
                    subject: format!("order/{id}"),
                    decision: "cancelled: the AML policy in force bars its trader".into(),
                    reason: Some(did),
                    tx: None,
                });
            }
        }
    }

    /// What `did` committed to in orders quoted in `quote` on `day`.
    pub fn committed_on(&self, did: &str, quote: &str, day: u64) -> u128 {
        match self.committed.get(&(did.to_string(), quote.to_string())) {
            Some((d, v)) if *d == day => *v,
            _ => 0,
        }
    }

    /// Adds `value` to what `did` committed to on `day` in `quote`.
    pub fn commit(&mut self, did: &str, quote: &str, day: u64, value: u128) {
        let e = self
            .committed
            .entry((did.to_string(), quote.to_string()))
            .or_insert((day, 0));
        if e.0 != day {
            *e = (day, 0);
        }
        e.1 = e.1.saturating_add(value);
    }

    /// The fee rate on `instrument`'s quote.
    pub fn fee_on(&self, quote: &Asset) -> u32 {
        match quote {
            Asset::Currency(_) => self.fee_bps,
            Asset::Token(_) => 0,
        }
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
