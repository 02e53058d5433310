//! The order book: price-time priority over an arena of orders.
//!
//! Orders live in one arena (`Vec<Node>` with a free list), linked into a
//! FIFO queue per price level, so cancelling any order is O(1) once found.
//! (Marking cancelled orders dead and unlinking them later was tried: the
//! later walks cost as many cache misses as they saved, and added latency
//! spikes when a long level was swept.)
//! Each side keeps its price levels in a vector sorted so that the best level
//! is last: the levels that change most sit at the cheap end of the vector,
//! and the best price is one load away. A hash index (a fixed, unseeded hash:
//! the same inputs always give the same layout) finds orders by id.

use crate::order::{
    acceptable, check_amend, check_order, BookStatus, CancelReason, Command, Event, InstrumentSpec,
    Level, NewOrder, OrderReject, Price, Qty, RestingOrder, SelfTradePrevention, Side, Snapshot,
    TimeInForce, TraderId,
};
use crate::{OrderBook, SpecError};
use rustc_hash::FxHashMap;
use tranche_types::OrderId;

const NIL: u32 = u32::MAX;

/// One cache line per order, so reading an order never straddles two lines.
#[derive(Clone, Copy, Debug)]
#[repr(align(64))]
struct Node {
    id: OrderId,
    trader: TraderId,
    price: u64,
    qty: u64,
    prev: u32,
    next: u32,
    side: Side,
}

#[derive(Clone, Copy, Debug)]
struct PriceLevel {
    price: u64,
    head: u32,
    tail: u32,
    /// Total open quantity of the orders.
    qty: u64,
    /// Orders in the queue.
    count: u32,
}

/// One side's price levels, best last: bids ascending, asks descending.
#[derive(Debug)]
struct Ladder {
    side: Side,
    levels: Vec<PriceLevel>,
}

impl Ladder {
    fn new(side: Side) -> Self {
        Self {
            side,
            levels: Vec::new(),
        }
    }

    /// The index of the level at `price`, or where it would go.
    #[inline]
    fn find(&self, price: u64) -> Result<usize, usize> {
        // Most activity is near the best price, at the end: check it first.
        if let Some(last) = self.levels.last() {
            if last.price == price {
                return Ok(self.levels.len() - 1);
            }
        }
        match self.side {
            Side::Buy => self.levels.binary_search_by(|l| l.price.cmp(&price)),
            Side::Sell => self.levels.binary_search_by(|l| price.cmp(&l.price)),
        }
    }
}

/// A price-time priority order book for one instrument.
#[derive(Debug)]
pub struct Book {
    spec: InstrumentSpec,
    status: BookStatus,
    nodes: Vec<Node>,
    free: Vec<u32>,
    index: FxHashMap<OrderId, u32>,
    bids: Ladder,
    asks: Ladder,
    open_by_trader: FxHashMap<TraderId, u32>,
    last_trade: Option<(Price, Qty)>,
}

/// Why a journal of events could not be replayed into a book.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event {index} cannot be replayed: {reason}")]
pub struct RebuildError {
    /// The position of the offending event.
    pub index: usize,
    /// What is inconsistent.
    pub reason: String,
}

impl Book {
    fn ladder(&mut self, side: Side) -> &mut Ladder {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    fn ladder_ref(&self, side: Side) -> &Ladder {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    fn alloc(&mut self, node: Node) -> u32 {
        match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                let i = u32::try_from(self.nodes.len()).expect("fewer than 2^32 orders rest");
                self.nodes.push(node);
                i
            }
        }
    }

    /// Appends a new resting order at the back of its price level.
    fn insert(&mut self, side: Side, id: OrderId, trader: TraderId, price: u64, qty: u64) {
        let idx = self.alloc(Node {
            id,
            trader,
            price,
            qty,
            prev: NIL,
            next: NIL,
            side,
        });
        self.index.insert(id, idx);
        *self.open_by_trader.entry(trader).or_insert(0) += 1;
        self.link_back(side, idx);
    }

    fn link_back(&mut self, side: Side, idx: u32) {
        let (price, qty) = {
            let n = &self.nodes[idx as usize];
            (n.price, n.qty)
        };
        let ladder = match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        match ladder.find(price) {
            Ok(l) => {
                let level = &mut ladder.levels[l];
                let tail = level.tail;
                level.tail = idx;
                level.qty += qty;
                level.count += 1;
                self.nodes[tail as usize].next = idx;
                self.nodes[idx as usize].prev = tail;
            }
            Err(at) => ladder.levels.insert(
                at,
                PriceLevel {
                    price,
                    head: idx,
                    tail: idx,
                    qty,
                    count: 1,
                },
            ),
        }
    }

    /// Takes a live order out of its level's queue at once (not out of the
    /// index), e.g. to move it to another price.
    fn unlink(&mut self, idx: u32) {
        let Node {
            side,
            price,
            qty,
            prev,
            next,
            ..
        } = self.nodes[idx as usize];
        let ladder = match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        let l = ladder.find(price).expect("a resting order's level exists");
        let level = &mut ladder.levels[l];
        level.qty -= qty;
        level.count -= 1;
        if prev == NIL {
            level.head = next;
        } else {
            self.nodes[prev as usize].next = next;
        }
        if next == NIL {
            level.tail = prev;
        } else {
            self.nodes[next as usize].prev = prev;
        }
        if level.count == 0 {
            ladder.levels.remove(l);
        }
    }

    /// Removes a resting order from the book entirely.
    fn remove(&mut self, idx: u32) -> Node {
        let node = self.nodes[idx as usize];
        self.index.remove(&node.id);
        self.drop_node(idx);
        node
    }

    /// Unlinks and frees an order that is already out of the index.
    fn drop_node(&mut self, idx: u32) {
        self.unlink(idx);
        self.release_trader_slot(self.nodes[idx as usize].trader);
        self.free.push(idx);
    }

    fn release_trader_slot(&mut self, trader: TraderId) {
        let count = self
            .open_by_trader
            .get_mut(&trader)
            .expect("a resting order's trader is counted");
        *count -= 1;
        if *count == 0 {
            self.open_by_trader.remove(&trader);
        }
    }

    /// Whether `trader` may place one more resting order.
    fn has_room(&self, trader: TraderId) -> bool {
        self.open_by_trader.get(&trader).copied().unwrap_or(0)
            < self.spec.open_orders_per_trader_max
    }

    fn fok_fillable(&self, o: &NewOrder) -> bool {
        let mut available: u64 = 0;
        let ladder = self.ladder_ref(o.side.opposite());
        for level in ladder.levels.iter().rev() {
            if !acceptable(o.side, o.price, Price(level.price)) {
                break;
            }
            let mut i = level.head;
            while i != NIL {
                let n = &self.nodes[i as usize];
                if n.trader == o.trader {
                    if o.stp != SelfTradePrevention::CancelOldest {
                        return available >= o.quantity.0;
                    }
                } else {
                    available = available.saturating_add(n.qty);
                    if available >= o.quantity.0 {
                        return true;
                    }
                }
                i = n.next;
            }
        }
        available >= o.quantity.0
    }

    fn submit(&mut self, o: &NewOrder, out: &mut Vec<Event>) {
        let reject = |out: &mut Vec<Event>, reason| {
            out.push(Event::Rejected {
                order: Some(o.id),
                reason,
            })
        };
        match self.status {
            BookStatus::Delisted => return reject(out, OrderReject::Delisted),
            BookStatus::Halted => return reject(out, OrderReject::Halted),
            BookStatus::Open => {}
        }
        if let Err(r) = check_order(&self.spec, o) {
            return reject(out, r);
        }
        if self.index.contains_key(&o.id) {
            return reject(out, OrderReject::DuplicateOrderId);
        }
        let may_rest = matches!(o.tif, TimeInForce::Gtc | TimeInForce::PostOnly);
        if may_rest && !self.has_room(o.trader) {
            return reject(out, OrderReject::TooManyOpenOrders);
        }
        let opposite = o.side.opposite();
        if o.tif == TimeInForce::PostOnly {
            if let Some(best) = self.ladder_ref(opposite).levels.last() {
                if acceptable(o.side, o.price, Price(best.price)) {
                    return reject(out, OrderReject::PostOnlyWouldCross);
                }
            }
        }
        if o.tif == TimeInForce::Fok && !self.fok_fillable(o) {
            return reject(out, OrderReject::FillOrKillUnfillable);
        }
        out.push(Event::Accepted {
            order: o.id,
            trader: o.trader,
            side: o.side,
            price: o.price,
            quantity: o.quantity,
        });

        let mut remaining = o.quantity.0;
        let mut self_trade_stop = false;
        while remaining > 0 {
            let ladder = match opposite {
                Side::Buy => &mut self.bids,
                Side::Sell => &mut self.asks,
            };
            let Some(level) = ladder.levels.last_mut() else {
                break;
            };
            if !acceptable(o.side, o.price, Price(level.price)) {
                break;
            }
            let head = level.head;
            let maker = self.nodes[head as usize];
            if maker.trader == o.trader {
                match o.stp {
                    SelfTradePrevention::CancelNewest => {
                        self_trade_stop = true;
                        break;
                    }
                    SelfTradePrevention::CancelOldest | SelfTradePrevention::CancelBoth => {
                        self.remove(head);
                        out.push(Event::Cancelled {
                            order: maker.id,
                            remaining: Qty(maker.qty),
                            reason: CancelReason::SelfTrade,
                        });
                        if o.stp == SelfTradePrevention::CancelBoth {
                            self_trade_stop = true;
                            break;
                        }
                        continue;
                    }
                }
            }
            let q = remaining.min(maker.qty);
            remaining -= q;
            level.qty -= q;
            self.last_trade = Some((Price(level.price), Qty(q)));
            out.push(Event::Trade {
                maker: maker.id,
                maker_trader: maker.trader,
                taker: o.id,
                taker_trader: o.trader,
                taker_side: o.side,
                price: Price(level.price),
                quantity: Qty(q),
            });
            if q == maker.qty {
                // The maker is filled: it is the head of the best level.
                level.count -= 1;
                level.head = maker.next;
                if maker.next == NIL {
                    ladder.levels.pop();
                } else {
                    self.nodes[maker.next as usize].prev = NIL;
                }
                self.index.remove(&maker.id);
                self.release_trader_slot(maker.trader);
                self.free.push(head);
                out.push(Event::Done { order: maker.id });
            } else {
                self.nodes[head as usize].qty -= q;
            }
        }

        if remaining == 0 {
            out.push(Event::Done { order: o.id });
        } else if self_trade_stop {
            out.push(Event::Cancelled {
                order: o.id,
                remaining: Qty(remaining),
                reason: CancelReason::SelfTrade,
            });
        } else if may_rest {
            let price = o.price.expect("only priced orders may rest").0;
            self.insert(o.side, o.id, o.trader, price, remaining);
        } else {
            debug_assert!(o.tif != TimeInForce::Fok, "a FOK order was pre-checked");
            out.push(Event::Cancelled {
                order: o.id,
                remaining: Qty(remaining),
                reason: CancelReason::Unfilled,
            });
        }
    }

    fn find_owned(&self, order: OrderId, trader: TraderId) -> Result<u32, OrderReject> {
        let idx = *self.index.get(&order).ok_or(OrderReject::UnknownOrder)?;
        if self.nodes[idx as usize].trader != trader {
            return Err(OrderReject::NotOrderOwner);
        }
        Ok(idx)
    }

    fn cancel(&mut self, order: OrderId, trader: TraderId, out: &mut Vec<Event>) {
        let reject = |out: &mut Vec<Event>, reason| {
            out.push(Event::Rejected {
                order: Some(order),
                reason,
            })
        };
        if self.status == BookStatus::Delisted {
            return reject(out, OrderReject::Delisted);
        }
        // One lookup on the hot path: take the order out of the index, and put
        // it back in the rare case that someone else's cancel named it.
        let Some(idx) = self.index.remove(&order) else {
            return reject(out, OrderReject::UnknownOrder);
        };
        let node = self.nodes[idx as usize];
        if node.trader != trader {
            self.index.insert(order, idx);
            return reject(out, OrderReject::NotOrderOwner);
        }
        self.drop_node(idx);
        out.push(Event::Cancelled {
            order,
            remaining: Qty(node.qty),
            reason: CancelReason::Requested,
        });
    }

    fn amend(
        &mut self,
        order: OrderId,
        trader: TraderId,
        quantity: Qty,
        price: Option<Price>,
        out: &mut Vec<Event>,
    ) {
        let result = (|| {
            match self.status {
                BookStatus::Delisted => return Err(OrderReject::Delisted),
                BookStatus::Halted => return Err(OrderReject::Halted),
                BookStatus::Open => {}
            }
            let idx = self.find_owned(order, trader)?;
            check_amend(&self.spec, quantity, price)?;
            let node = self.nodes[idx as usize];
            let new_price = price.map_or(node.price, |p| p.0);
            if new_price != node.price {
                if let Some(best) = self.ladder_ref(node.side.opposite()).levels.last() {
                    if acceptable(node.side, Some(Price(new_price)), Price(best.price)) {
                        return Err(OrderReject::AmendWouldCross);
                    }
                }
            }
            Ok((idx, node, new_price))
        })();
        let (idx, node, new_price) = match result {
            Ok(v) => v,
            Err(reason) => {
                return out.push(Event::Rejected {
                    order: Some(order),
                    reason,
                })
            }
        };
        let keep = new_price == node.price && quantity.0 <= node.qty;
        if keep {
            let ladder = self.ladder(node.side);
            let l = ladder
                .find(node.price)
                .expect("a resting order's level exists");
            ladder.levels[l].qty -= node.qty - quantity.0;
            self.nodes[idx as usize].qty = quantity.0;
        } else {
            self.unlink(idx);
            let n = &mut self.nodes[idx as usize];
            n.price = new_price;
            n.qty = quantity.0;
            n.prev = NIL;
            n.next = NIL;
            self.link_back(node.side, idx);
        }
        out.push(Event::Amended {
            order,
            price: Price(new_price),
            quantity,
            priority_kept: keep,
        });
    }

    fn delist(&mut self, out: &mut Vec<Event>) {
        for side in [Side::Buy, Side::Sell] {
            let levels = std::mem::take(&mut self.ladder(side).levels);
            for level in levels.iter().rev() {
                let mut i = level.head;
                while i != NIL {
                    let node = self.nodes[i as usize];
                    self.index.remove(&node.id);
                    self.release_trader_slot(node.trader);
                    out.push(Event::Cancelled {
                        order: node.id,
                        remaining: Qty(node.qty),
                        reason: CancelReason::Delisted,
                    });
                    self.free.push(i);
                    i = node.next;
                }
            }
        }
        self.status = BookStatus::Delisted;
        out.push(Event::Status {
            status: BookStatus::Delisted,
        });
    }

    /// Rebuilds a book from its journal of events: the same resting orders in
    /// the same priority, the same status and last trade.
    pub fn rebuild(spec: InstrumentSpec, events: &[Event]) -> Result<Book, RebuildError> {
        let mut book = Book::new(spec).map_err(|e| RebuildError {
            index: 0,
            reason: e.to_string(),
        })?;
        for (i, event) in events.iter().enumerate() {
            let fail = |reason: String| RebuildError { index: i, reason };
            match *event {
                Event::Accepted {
                    order,
                    trader,
                    side,
                    price,
                    quantity,
                } => {
                    if let Some(p) = price {
                        if book.index.contains_key(&order) {
                            return Err(fail(format!("order {order} accepted twice")));
                        }
                        // Enters at the back of its level; its trades reduce it next.
                        book.insert(side, order, trader, p.0, quantity.0);
                    }
                }
                Event::Trade {
                    maker,
                    taker,
                    price,
                    quantity,
                    ..
                } => {
                    let m = *book
                        .index
                        .get(&maker)
                        .ok_or_else(|| fail(format!("maker {maker} is not resting")))?;
                    book.reduce(m, quantity.0).map_err(fail)?;
                    if let Some(&t) = book.index.get(&taker) {
                        book.reduce(t, quantity.0).map_err(fail)?;
                    }
                    book.last_trade = Some((price, quantity));
                }
                Event::Cancelled { order, .. } | Event::Done { order } => {
                    if let Some(&idx) = book.index.get(&order) {
                        book.remove(idx);
                    }
                }
                Event::Amended {
                    order,
                    price,
                    quantity,
                    priority_kept,
                } => {
                    let idx = *book
                        .index
                        .get(&order)
                        .ok_or_else(|| fail(format!("amended order {order} is not resting")))?;
                    let node = book.nodes[idx as usize];
                    if priority_kept {
                        if quantity.0 > node.qty || price.0 != node.price {
                            return Err(fail(format!(
                                "order {order} kept priority but grew or moved"
                            )));
                        }
                        book.reduce(idx, node.qty - quantity.0).map_err(fail)?;
                    } else {
                        book.unlink(idx);
                        let n = &mut book.nodes[idx as usize];
                        n.price = price.0;
                        n.qty = quantity.0;
                        n.prev = NIL;
                        n.next = NIL;
                        book.link_back(node.side, idx);
                    }
                }
                Event::Status { status } => book.status = status,
                Event::Rejected { .. } => {}
            }
        }
        Ok(book)
    }

    /// Takes `q` from a resting order, removing it at zero.
    fn reduce(&mut self, idx: u32, q: u64) -> Result<(), String> {
        let node = self.nodes[idx as usize];
        if q > node.qty {
            return Err(format!("order {} has {} left, not {q}", node.id, node.qty));
        }
        if q == node.qty {
            self.remove(idx);
            return Ok(());
        }
        let ladder = self.ladder(node.side);
        let l = ladder
            .find(node.price)
            .expect("a resting order's level exists");
        ladder.levels[l].qty -= q;
        self.nodes[idx as usize].qty -= q;
        Ok(())
    }

    /// Panics if the book's structure is inconsistent: levels sorted and
    /// non-empty, level totals equal to their orders, the book not crossed,
    /// the index and per-trader counts matching the orders.
    pub fn check_invariants(&self) {
        let mut live = 0usize;
        let mut per_trader: FxHashMap<TraderId, u32> = FxHashMap::default();
        for ladder in [&self.bids, &self.asks] {
            for w in ladder.levels.windows(2) {
                match ladder.side {
                    Side::Buy => assert!(w[0].price < w[1].price, "bids sorted"),
                    Side::Sell => assert!(w[0].price > w[1].price, "asks sorted"),
                }
            }
            for level in &ladder.levels {
                assert!(level.count > 0, "no empty level");
                let (mut qty, mut count) = (0u64, 0u32);
                let (mut prev, mut i) = (NIL, level.head);
                while i != NIL {
                    let n = &self.nodes[i as usize];
                    assert_eq!(n.prev, prev, "links agree");
                    assert_eq!(n.price, level.price, "order at its level's price");
                    assert_eq!(n.side, ladder.side, "order on its side");
                    assert!(n.qty > 0, "no empty order rests");
                    assert_eq!(self.index.get(&n.id), Some(&i), "index points at the order");
                    *per_trader.entry(n.trader).or_insert(0) += 1;
                    qty += n.qty;
                    count += 1;
                    prev = i;
                    i = n.next;
                }
                assert_eq!(level.tail, prev, "tail is the last order");
                assert_eq!((qty, count), (level.qty, level.count), "level totals");
                live += count as usize;
            }
        }
        assert_eq!(live, self.index.len(), "every indexed order rests");
        assert_eq!(
            live + self.free.len(),
            self.nodes.len(),
            "no order slot leaks"
        );
        assert_eq!(per_trader, self.open_by_trader, "per-trader counts");
        if let (Some(b), Some(a)) = (self.bids.levels.last(), self.asks.levels.last()) {
            assert!(b.price < a.price, "the book is not crossed");
        }
    }
}

impl OrderBook for Book {
    fn new(spec: InstrumentSpec) -> Result<Self, SpecError> {
        spec_check(&spec)?;
        Ok(Self {
            spec,
            status: BookStatus::Open,
            nodes: Vec::new(),
            free: Vec::new(),
            index: FxHashMap::default(),
            bids: Ladder::new(Side::Buy),
            asks: Ladder::new(Side::Sell),
            open_by_trader: FxHashMap::default(),
            last_trade: None,
        })
    }

    fn spec(&self) -> &InstrumentSpec {
        &self.spec
    }

    fn execute(&mut self, cmd: &Command, out: &mut Vec<Event>) {
        match cmd {
            Command::Submit(o) => self.submit(o, out),
            Command::Cancel { order, trader } => self.cancel(*order, *trader, out),
            Command::Amend {
                order,
                trader,
                quantity,
                price,
            } => self.amend(*order, *trader, *quantity, *price, out),
            Command::Halt | Command::Resume | Command::Delist
                if self.status == BookStatus::Delisted =>
            {
                out.push(Event::Rejected {
                    order: None,
                    reason: OrderReject::Delisted,
                })
            }
            Command::Halt => {
                self.status = BookStatus::Halted;
                out.push(Event::Status {
                    status: BookStatus::Halted,
                });
            }
            Command::Resume => {
                self.status = BookStatus::Open;
                out.push(Event::Status {
                    status: BookStatus::Open,
                });
            }
            Command::Delist => self.delist(out),
        }
    }

    fn status(&self) -> BookStatus {
        self.status
    }

    fn depth(&self, side: Side, max_levels: usize) -> Vec<Level> {
        self.ladder_ref(side)
            .levels
            .iter()
            .rev()
            .take(max_levels)
            .map(|l| Level {
                price: Price(l.price),
                quantity: Qty(l.qty),
                orders: l.count,
            })
            .collect()
    }

    fn last_trade(&self) -> Option<(Price, Qty)> {
        self.last_trade
    }

    fn open_orders(&self) -> usize {
        self.index.len()
    }

    fn snapshot(&self) -> Snapshot {
        let side_orders = |ladder: &Ladder| {
            let mut out = Vec::new();
            for level in ladder.levels.iter().rev() {
                let mut i = level.head;
                while i != NIL {
                    let n = &self.nodes[i as usize];
                    out.push(RestingOrder {
                        id: n.id,
                        trader: n.trader,
                        price: Price(n.price),
                        quantity: Qty(n.qty),
                    });
                    i = n.next;
                }
            }
            out
        };
        Snapshot {
            status: self.status,
            bids: side_orders(&self.bids),
            asks: side_orders(&self.asks),
            last_trade: self.last_trade,
        }
    }
}

/// Checks an instrument's rules before a book is opened for it.
pub(crate) fn spec_check(spec: &InstrumentSpec) -> Result<(), SpecError> {
    if spec.tick == 0 {
        return Err(SpecError("tick must be at least 1".into()));
    }
    if spec.lot == 0 {
        return Err(SpecError("lot must be at least 1".into()));
    }
    if spec.open_orders_per_trader_max == 0 {
        return Err(SpecError(
            "open_orders_per_trader_max must be at least 1".into(),
        ));
    }
    Ok(())
}
