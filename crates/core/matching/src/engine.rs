//! The engine: one book per listed instrument.

use crate::order::{Command, Event, InstrumentId, InstrumentSpec, OrderReject};
use crate::{Book, OrderBook, SpecError};
use std::collections::BTreeMap;

/// Books by instrument. Generic over the book so the reference model can be
/// run through exactly the same front door.
#[derive(Debug)]
pub struct MatchingEngine<B: OrderBook = Book> {
    books: BTreeMap<InstrumentId, B>,
}

impl<B: OrderBook> Default for MatchingEngine<B> {
    fn default() -> Self {
        Self {
            books: BTreeMap::new(),
        }
    }
}

impl<B: OrderBook> MatchingEngine<B> {
    /// An engine with no instruments.
    pub fn new() -> Self {
        Self::default()
    }

    /// Lists an instrument (F6-2: the exchange lists issued tokens). Its id is
    /// the spec's symbol, e.g. `SEOUL-TOWER-1/USD`.
    pub fn list(&mut self, spec: InstrumentSpec) -> Result<InstrumentId, SpecError> {
        let id = InstrumentId::new(&spec.symbol()).map_err(|e| SpecError(e.to_string()))?;
        if self.books.contains_key(&id) {
            return Err(SpecError(format!("{id} is already listed")));
        }
        self.books.insert(id.clone(), B::new(spec)?);
        Ok(id)
    }

    /// Carries out `cmd` on `instrument`'s book, appending events to `out`.
    pub fn execute(&mut self, instrument: &InstrumentId, cmd: &Command, out: &mut Vec<Event>) {
        match self.books.get_mut(instrument) {
            Some(book) => book.execute(cmd, out),
            None => out.push(Event::Rejected {
                order: match cmd {
                    Command::Submit(o) => Some(o.id),
                    Command::Cancel { order, .. } | Command::Amend { order, .. } => Some(*order),
                    _ => None,
                },
                reason: OrderReject::UnknownInstrument,
            }),
        }
    }

    /// The book of `instrument`.
    pub fn book(&self, instrument: &InstrumentId) -> Option<&B> {
        self.books.get(instrument)
    }

    /// Every listed instrument, in order.
    pub fn instruments(&self) -> impl Iterator<Item = &InstrumentId> {
        self.books.keys()
    }
}
