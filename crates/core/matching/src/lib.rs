//! Matches orders for security tokens in price-time priority, one book per
//! instrument, deterministically.
//!
//! An instrument pairs a security token (the base) with what it is priced in
//! (the quote): fiat, a CBDC, a cryptocurrency, or another security token
//! (F6-4). Prices are integers in the quote's minor units per token,
//! quantities integers in tokens, each a multiple of the instrument's tick and
//! lot.
//!
//! Invariants:
//! - Pure: no IO, no clock, no randomness. The same commands give the same
//!   events and the same book, always.
//! - A book never rests crossed; trades happen at the resting order's price;
//!   within a price, the earliest order trades first.
//! - Quantity is conserved: what an order was accepted with equals what it
//!   traded, what was cancelled, and what rests.
//! - Every command yields events; a refusal is an event with a stable code,
//!   never a panic. Replaying the events rebuilds the exact book.

mod book;
mod engine;
mod order;
pub mod reference;

pub use book::{Book, RebuildError};
pub use engine::MatchingEngine;
pub use order::{
    BookStatus, CancelReason, Command, Event, InstrumentId, InstrumentSpec, Level, NewOrder,
    OrderReject, Price, Qty, Quote, RestingOrder, SelfTradePrevention, Side, Snapshot, TimeInForce,
    TraderId,
};
pub use reference::ReferenceBook;

/// Why an instrument's rules are unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid instrument: {0}")]
pub struct SpecError(pub String);

/// What every order book offers: commands in, events out, market data.
pub trait OrderBook: Sized {
    /// An empty, open book for an instrument.
    fn new(spec: InstrumentSpec) -> Result<Self, SpecError>;
    /// The instrument's rules.
    fn spec(&self) -> &InstrumentSpec;
    /// Carries out `cmd`, appending what happened to `out`.
    fn execute(&mut self, cmd: &Command, out: &mut Vec<Event>);
    /// Open, halted or delisted.
    fn status(&self) -> BookStatus;
    /// Up to `max_levels` price levels of `side`, best first.
    fn depth(&self, side: Side, max_levels: usize) -> Vec<Level>;
    /// The best level of `side`.
    fn best(&self, side: Side) -> Option<Level> {
        self.depth(side, 1).into_iter().next()
    }
    /// The last trade's price and quantity.
    fn last_trade(&self) -> Option<(Price, Qty)>;
    /// How many orders rest.
    fn open_orders(&self) -> usize;
    /// Every resting order in priority order, with status and last trade.
    fn snapshot(&self) -> Snapshot;
}
