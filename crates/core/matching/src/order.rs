//! Orders, commands, events and rejections: the matching engine's language.

use serde::{Deserialize, Serialize};
use std::fmt;
use tranche_types::{Currency, IdError, OrderId, TokenId};

/// A price: minor units of the quote asset per one unit of the base token
/// (cents per token for a USD pair, satoshi per token for BTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Price(pub u64);

/// A quantity of the base token, in whole units.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Qty(pub u64);

/// The trader behind an order, as the exchange identifies them (F6-3).
/// Self-trade prevention and the open-order limit work on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TraderId(pub u64);

/// Buy or sell the base token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// Buy: bids.
    Buy,
    /// Sell: asks.
    Sell,
}

impl Side {
    /// The other side.
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
}

/// What the base token is priced in (F6-4): money, or another security token.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quote {
    /// Fiat, a CBDC or a cryptocurrency.
    Currency(Currency),
    /// Another security token (ST for ST).
    Token(TokenId),
}

impl Quote {
    /// The quote's code or token id.
    pub fn code(&self) -> &str {
        match self {
            Quote::Currency(c) => c.code(),
            Quote::Token(t) => t.as_str(),
        }
    }
}

/// An instrument's trading rules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstrumentSpec {
    /// The security token traded.
    pub base: TokenId,
    /// What it is priced in.
    pub quote: Quote,
    /// Prices must be multiples of this (at least 1).
    pub tick: u64,
    /// Quantities must be multiples of this (at least 1).
    pub lot: u64,
    /// How many orders one trader may have resting on this book.
    pub open_orders_per_trader_max: u32,
}

impl InstrumentSpec {
    /// A spec with tick 1, lot 1 and room for 1,000 open orders per trader.
    pub fn new(base: TokenId, quote: Quote) -> Self {
        Self {
            base,
            quote,
            tick: 1,
            lot: 1,
            open_orders_per_trader_max: 1_000,
        }
    }

    /// `BASE/QUOTE`, e.g. `SEOUL-TOWER-1/USD`.
    pub fn symbol(&self) -> String {
        format!("{}/{}", self.base, self.quote.code())
    }
}

/// How long an order may stay and whether it may take liquidity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeInForce {
    /// Good till cancelled: trades what it can, rests the rest.
    Gtc,
    /// Immediate or cancel: trades what it can now, cancels the rest.
    Ioc,
    /// Fill or kill: trades all of it now, or is rejected untouched.
    Fok,
    /// Post only: rests without trading, or is rejected if it would trade.
    PostOnly,
}

/// What to do when an incoming order would trade with a resting order of the
/// same trader. The incoming order's choice applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SelfTradePrevention {
    /// Cancel the rest of the incoming order.
    CancelNewest,
    /// Cancel the resting order and go on matching.
    CancelOldest,
    /// Cancel both.
    CancelBoth,
}

/// A new order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOrder {
    /// The exchange's id for it; must not be resting already.
    pub id: OrderId,
    /// Who sends it.
    pub trader: TraderId,
    /// Buy or sell.
    pub side: Side,
    /// The limit price; `None` is a market order (IOC or FOK only).
    pub price: Option<Price>,
    /// How many units.
    pub quantity: Qty,
    /// Time in force.
    pub tif: TimeInForce,
    /// Self-trade prevention.
    pub stp: SelfTradePrevention,
}

/// Everything a book can be told.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// Enter a new order.
    Submit(NewOrder),
    /// Cancel a resting order.
    Cancel {
        /// The order.
        order: OrderId,
        /// Who asks: must be the order's trader.
        trader: TraderId,
    },
    /// Change a resting order's quantity or price. Reducing the quantity keeps
    /// its place in the queue; a new price or a larger quantity sends it to the
    /// back. An amend never trades.
    Amend {
        /// The order.
        order: OrderId,
        /// Who asks: must be the order's trader.
        trader: TraderId,
        /// The new open quantity.
        quantity: Qty,
        /// The new price, if it changes.
        price: Option<Price>,
    },
    /// Stop matching (e.g. the token is paused); cancels are still accepted.
    Halt,
    /// Resume matching after a halt.
    Resume,
    /// Cancel every resting order and close the book for good (e.g. the token
    /// is revoked, F6-2).
    Delist,
}

/// A book's trading state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BookStatus {
    /// Matching.
    Open,
    /// Matching nothing; cancels accepted.
    Halted,
    /// Closed for good.
    Delisted,
}

/// Why a resting or incoming order was cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelReason {
    /// Its trader asked.
    Requested,
    /// The unfilled rest of an immediate-or-cancel or market order.
    Unfilled,
    /// Self-trade prevention.
    SelfTrade,
    /// The instrument was delisted.
    Delisted,
}

macro_rules! order_rejects {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal, $name:literal, $msg:literal; )*) => {
        /// Why a command was refused: a stable code, a stable name and a message.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        #[repr(u16)]
        pub enum OrderReject {
            $( $(#[$doc])* $variant = $code, )*
        }

        impl OrderReject {
            /// Every reason.
            pub const ALL: &'static [OrderReject] = &[$(OrderReject::$variant,)*];

            /// The stable numeric code.
            pub fn code(self) -> u16 {
                self as u16
            }

            /// The stable name.
            pub fn name(self) -> &'static str {
                match self { $(OrderReject::$variant => $name,)* }
            }

            /// What it means and what to do.
            pub fn message(self) -> &'static str {
                match self { $(OrderReject::$variant => $msg,)* }
            }
        }
    };
}

order_rejects! {
    /// Quantity zero.
    ZeroQuantity = 1, "ZERO_QUANTITY", "the quantity must be at least one lot";
    /// Quantity not a multiple of the lot size.
    LotSize = 2, "LOT_SIZE", "the quantity must be a multiple of the instrument's lot size";
    /// Price zero.
    ZeroPrice = 3, "ZERO_PRICE", "a limit price must be above zero";
    /// Price not a multiple of the tick size.
    TickSize = 4, "TICK_SIZE", "the price must be a multiple of the instrument's tick size";
    /// An order with this id is resting.
    DuplicateOrderId = 5, "DUPLICATE_ORDER_ID", "an order with this id is already on the book; use a new id";
    /// No resting order has this id.
    UnknownOrder = 6, "UNKNOWN_ORDER", "no resting order has this id; it may be filled or cancelled already";
    /// The order belongs to another trader.
    NotOrderOwner = 7, "NOT_ORDER_OWNER", "only the trader who placed an order may change or cancel it";
    /// The trader has too many resting orders.
    TooManyOpenOrders = 8, "TOO_MANY_OPEN_ORDERS", "the trader has the most resting orders allowed on this instrument; cancel some first";
    /// The book is halted.
    Halted = 9, "HALTED", "trading in this instrument is halted; only cancels are accepted";
    /// The book is delisted.
    Delisted = 10, "DELISTED", "this instrument is delisted; nothing more can be traded";
    /// A post-only order would have traded.
    PostOnlyWouldCross = 11, "POST_ONLY_WOULD_CROSS", "the post-only order would trade on arrival; lower a buy or raise a sell price";
    /// A fill-or-kill order could not be filled in full.
    FillOrKillUnfillable = 12, "FILL_OR_KILL_UNFILLABLE", "there is not enough quantity at acceptable prices to fill the whole order now";
    /// A market order asked to rest.
    MarketMustNotRest = 13, "MARKET_MUST_NOT_REST", "a market order has no price and cannot rest: use IOC or FOK, or give a limit price";
    /// An amend would make the order trade.
    AmendWouldCross = 14, "AMEND_WOULD_CROSS", "the new price would trade on arrival; an amend never trades, so cancel and enter a new order";
    /// The instrument is not known.
    UnknownInstrument = 15, "UNKNOWN_INSTRUMENT", "no instrument with this symbol is listed";
}

impl fmt::Display for OrderReject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message(), self.name())
    }
}

/// What a book did, in order. Persisting these and replaying them rebuilds the
/// exact book (see `Book::rebuild`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A new order was accepted; trades, a cancel or a rest follow.
    Accepted {
        /// The order.
        order: OrderId,
        /// Its trader.
        trader: TraderId,
        /// Its side.
        side: Side,
        /// Its limit price (`None` for a market order).
        price: Option<Price>,
        /// Its quantity.
        quantity: Qty,
    },
    /// A command was refused; nothing changed.
    Rejected {
        /// The order concerned, if any.
        order: Option<OrderId>,
        /// Why.
        reason: OrderReject,
    },
    /// A trade between a resting (maker) and an incoming (taker) order, at the maker's price.
    Trade {
        /// The resting order.
        maker: OrderId,
        /// Its trader.
        maker_trader: TraderId,
        /// The incoming order.
        taker: OrderId,
        /// Its trader.
        taker_trader: TraderId,
        /// The taker's side.
        taker_side: Side,
        /// The price.
        price: Price,
        /// The quantity.
        quantity: Qty,
    },
    /// An order left the book, or an incoming order stopped, unfilled in part.
    Cancelled {
        /// The order.
        order: OrderId,
        /// The quantity that was left.
        remaining: Qty,
        /// Why.
        reason: CancelReason,
    },
    /// A resting order was amended.
    Amended {
        /// The order.
        order: OrderId,
        /// Its price now.
        price: Price,
        /// Its open quantity now.
        quantity: Qty,
        /// Whether it kept its place in the queue.
        priority_kept: bool,
    },
    /// An order was filled in full.
    Done {
        /// The order.
        order: OrderId,
    },
    /// The book's status changed.
    Status {
        /// The new status.
        status: BookStatus,
    },
}

/// One price level of market data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Level {
    /// The price.
    pub price: Price,
    /// The total quantity resting there.
    pub quantity: Qty,
    /// How many orders rest there.
    pub orders: u32,
}

/// A resting order as seen in a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestingOrder {
    /// The order.
    pub id: OrderId,
    /// Its trader.
    pub trader: TraderId,
    /// Its price.
    pub price: Price,
    /// Its open quantity.
    pub quantity: Qty,
}

/// The whole state of a book: every resting order in priority order (best
/// price first, then time), the status and the last trade.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The status.
    pub status: BookStatus,
    /// Bids, best first.
    pub bids: Vec<RestingOrder>,
    /// Asks, best first.
    pub asks: Vec<RestingOrder>,
    /// The last trade's price and quantity.
    pub last_trade: Option<(Price, Qty)>,
}

/// A symbol such as `SEOUL-TOWER-1/USD`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct InstrumentId(String);

impl InstrumentId {
    /// Checks and makes a symbol: `BASE/QUOTE`, each a token id or code.
    pub fn new(symbol: &str) -> Result<Self, IdError> {
        let Some((base, quote)) = symbol.split_once('/') else {
            return Err(IdError {
                kind: "instrument",
                value: symbol.chars().take(80).collect(),
                reason: "must be BASE/QUOTE, e.g. SEOUL-TOWER-1/USD".into(),
            });
        };
        TokenId::new(base)?;
        TokenId::new(quote)?;
        Ok(Self(symbol.to_string()))
    }

    /// The symbol.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InstrumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks what can be checked of a new order without looking at the book.
pub(crate) fn check_order(spec: &InstrumentSpec, o: &NewOrder) -> Result<(), OrderReject> {
    if o.quantity.0 == 0 {
        return Err(OrderReject::ZeroQuantity);
    }
    if !multiple_of(o.quantity.0, spec.lot) {
        return Err(OrderReject::LotSize);
    }
    match o.price {
        None if matches!(o.tif, TimeInForce::Gtc | TimeInForce::PostOnly) => {
            Err(OrderReject::MarketMustNotRest)
        }
        None => Ok(()),
        Some(Price(0)) => Err(OrderReject::ZeroPrice),
        Some(Price(p)) if !multiple_of(p, spec.tick) => Err(OrderReject::TickSize),
        Some(_) => Ok(()),
    }
}

/// Checks an amend's new quantity and price against the instrument.
pub(crate) fn check_amend(
    spec: &InstrumentSpec,
    quantity: Qty,
    price: Option<Price>,
) -> Result<(), OrderReject> {
    if quantity.0 == 0 {
        return Err(OrderReject::ZeroQuantity);
    }
    if !multiple_of(quantity.0, spec.lot) {
        return Err(OrderReject::LotSize);
    }
    match price {
        Some(Price(0)) => Err(OrderReject::ZeroPrice),
        Some(Price(p)) if !multiple_of(p, spec.tick) => Err(OrderReject::TickSize),
        _ => Ok(()),
    }
}

/// Whether `value` is a multiple of `step` (at least 1). A step of 1, the
/// common case, skips the division, which costs more than the rest of a check.
#[inline]
fn multiple_of(value: u64, step: u64) -> bool {
    step == 1 || value.is_multiple_of(step)
}

/// Whether a taker on `side` with `limit` accepts a maker at `price`.
#[inline]
pub(crate) fn acceptable(side: Side, limit: Option<Price>, price: Price) -> bool {
    match (side, limit) {
        (_, None) => true,
        (Side::Buy, Some(l)) => price <= l,
        (Side::Sell, Some(l)) => price >= l,
    }
}
