//! The reference book: the plainest correct price-time priority book we could
//! write, a `BTreeMap` of price levels each holding a `VecDeque` of orders.
//! It is the model the fast [`Book`](crate::Book) is tested against, and the
//! baseline its benchmark is measured against. Clarity over speed, always.

use crate::book::spec_check;
use crate::order::{
    acceptable, check_amend, check_order, BookStatus, CancelReason, Command, Event, InstrumentSpec,
    Level, NewOrder, OrderReject, Price, Qty, RestingOrder, SelfTradePrevention, Side, Snapshot,
    TimeInForce, TraderId,
};
use crate::{OrderBook, SpecError};
use std::collections::{BTreeMap, HashMap, VecDeque};
use tranche_types::OrderId;

#[derive(Clone, Copy, Debug)]
struct Resting {
    id: OrderId,
    trader: TraderId,
    qty: u64,
}

/// A straightforward order book.
#[derive(Debug)]
pub struct ReferenceBook {
    spec: InstrumentSpec,
    status: BookStatus,
    bids: BTreeMap<u64, VecDeque<Resting>>,
    asks: BTreeMap<u64, VecDeque<Resting>>,
    location: HashMap<OrderId, (Side, u64)>,
    open_by_trader: HashMap<TraderId, u32>,
    last_trade: Option<(Price, Qty)>,
}

impl ReferenceBook {
    fn side_mut(&mut self, side: Side) -> &mut BTreeMap<u64, VecDeque<Resting>> {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    /// The best price on `side` (highest bid, lowest ask).
    fn best_price(&self, side: Side) -> Option<u64> {
        match side {
            Side::Buy => self.bids.keys().next_back().copied(),
            Side::Sell => self.asks.keys().next().copied(),
        }
    }

    /// Every resting order on `side`, best price first, then oldest first.
    fn in_priority(&self, side: Side) -> Vec<(u64, Resting)> {
        let mut out = Vec::new();
        let mut push = |(p, q): (&u64, &VecDeque<Resting>)| {
            out.extend(q.iter().map(|r| (*p, *r)));
        };
        match side {
            Side::Buy => self.bids.iter().rev().for_each(&mut push),
            Side::Sell => self.asks.iter().for_each(&mut push),
        }
        out
    }

    fn add(&mut self, side: Side, price: u64, r: Resting) {
        self.side_mut(side).entry(price).or_default().push_back(r);
        self.location.insert(r.id, (side, price));
        *self.open_by_trader.entry(r.trader).or_insert(0) += 1;
    }

    fn take(&mut self, id: OrderId) -> Resting {
        let (side, price) = self.location.remove(&id).expect("located order");
        let book = self.side_mut(side);
        let queue = book.get_mut(&price).expect("its level");
        let at = queue.iter().position(|r| r.id == id).expect("in its level");
        let r = queue.remove(at).expect("present");
        if queue.is_empty() {
            book.remove(&price);
        }
        let n = self.open_by_trader.get_mut(&r.trader).expect("counted");
        *n -= 1;
        if *n == 0 {
            self.open_by_trader.remove(&r.trader);
        }
        r
    }

    fn submit(&mut self, o: &NewOrder, out: &mut Vec<Event>) {
        if let Err(reason) = self.admit(o) {
            out.push(Event::Rejected {
                order: Some(o.id),
                reason,
            });
            return;
        }
        out.push(Event::Accepted {
            order: o.id,
            trader: o.trader,
            side: o.side,
            price: o.price,
            quantity: o.quantity,
        });
        let mut remaining = o.quantity.0;
        let mut stopped = false;
        let opposite = o.side.opposite();
        while remaining > 0 {
            let Some(price) = self.best_price(opposite) else {
                break;
            };
            if !acceptable(o.side, o.price, Price(price)) {
                break;
            }
            let maker = self.side_mut(opposite)[&price][0];
            if maker.trader == o.trader {
                if o.stp == SelfTradePrevention::CancelNewest {
                    stopped = true;
                    break;
                }
                self.take(maker.id);
                out.push(Event::Cancelled {
                    order: maker.id,
                    remaining: Qty(maker.qty),
                    reason: CancelReason::SelfTrade,
                });
                if o.stp == SelfTradePrevention::CancelBoth {
                    stopped = true;
                    break;
                }
                continue;
            }
            let q = remaining.min(maker.qty);
            remaining -= q;
            self.last_trade = Some((Price(price), Qty(q)));
            out.push(Event::Trade {
                maker: maker.id,
                maker_trader: maker.trader,
                taker: o.id,
                taker_trader: o.trader,
                taker_side: o.side,
                price: Price(price),
                quantity: Qty(q),
            });
            if q == maker.qty {
                self.take(maker.id);
                out.push(Event::Done { order: maker.id });
            } else {
                self.side_mut(opposite).get_mut(&price).expect("level")[0].qty -= q;
            }
        }
        if remaining == 0 {
            out.push(Event::Done { order: o.id });
        } else if stopped {
            out.push(Event::Cancelled {
                order: o.id,
                remaining: Qty(remaining),
                reason: CancelReason::SelfTrade,
            });
        } else if matches!(o.tif, TimeInForce::Gtc | TimeInForce::PostOnly) {
            let price = o.price.expect("priced").0;
            self.add(
                o.side,
                price,
                Resting {
                    id: o.id,
                    trader: o.trader,
                    qty: remaining,
                },
            );
        } else {
            out.push(Event::Cancelled {
                order: o.id,
                remaining: Qty(remaining),
                reason: CancelReason::Unfilled,
            });
        }
    }

    fn admit(&self, o: &NewOrder) -> Result<(), OrderReject> {
        match self.status {
            BookStatus::Delisted => return Err(OrderReject::Delisted),
            BookStatus::Halted => return Err(OrderReject::Halted),
            BookStatus::Open => {}
        }
        check_order(&self.spec, o)?;
        if self.location.contains_key(&o.id) {
            return Err(OrderReject::DuplicateOrderId);
        }
        let open = self.open_by_trader.get(&o.trader).copied().unwrap_or(0);
        if matches!(o.tif, TimeInForce::Gtc | TimeInForce::PostOnly)
            && open >= self.spec.open_orders_per_trader_max
        {
            return Err(OrderReject::TooManyOpenOrders);
        }
        let crosses = self
            .best_price(o.side.opposite())
            .is_some_and(|p| acceptable(o.side, o.price, Price(p)));
        if o.tif == TimeInForce::PostOnly && crosses {
            return Err(OrderReject::PostOnlyWouldCross);
        }
        if o.tif == TimeInForce::Fok {
            // Walk the opposite side in priority order; our own orders either
            // stop the walk (the taker would be cancelled there) or are skipped.
            let mut available = 0u64;
            for (price, r) in self.in_priority(o.side.opposite()) {
                if !acceptable(o.side, o.price, Price(price)) || available >= o.quantity.0 {
                    break;
                }
                if r.trader == o.trader {
                    if o.stp != SelfTradePrevention::CancelOldest {
                        break;
                    }
                } else {
                    available = available.saturating_add(r.qty);
                }
            }
            if available < o.quantity.0 {
                return Err(OrderReject::FillOrKillUnfillable);
            }
        }
        Ok(())
    }

    fn owned(&self, order: OrderId, trader: TraderId) -> Result<(Side, u64, Resting), OrderReject> {
        let (side, price) = *self.location.get(&order).ok_or(OrderReject::UnknownOrder)?;
        let book = match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        };
        let r = *book[&price]
            .iter()
            .find(|r| r.id == order)
            .expect("located");
        if r.trader != trader {
            return Err(OrderReject::NotOrderOwner);
        }
        Ok((side, price, r))
    }
}

impl OrderBook for ReferenceBook {
    fn new(spec: InstrumentSpec) -> Result<Self, SpecError> {
        spec_check(&spec)?;
        Ok(Self {
            spec,
            status: BookStatus::Open,
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
            location: HashMap::new(),
            open_by_trader: HashMap::new(),
            last_trade: None,
        })
    }

    fn spec(&self) -> &InstrumentSpec {
        &self.spec
    }

    fn execute(&mut self, cmd: &Command, out: &mut Vec<Event>) {
        let reject = |out: &mut Vec<Event>, order, reason| {
            out.push(Event::Rejected { order, reason });
        };
        match cmd {
            Command::Submit(o) => self.submit(o, out),
            Command::Cancel { order, trader } => {
                if self.status == BookStatus::Delisted {
                    return reject(out, Some(*order), OrderReject::Delisted);
                }
                match self.owned(*order, *trader) {
                    Err(r) => reject(out, Some(*order), r),
                    Ok(_) => {
                        let r = self.take(*order);
                        out.push(Event::Cancelled {
                            order: *order,
                            remaining: Qty(r.qty),
                            reason: CancelReason::Requested,
                        });
                    }
                }
            }
            Command::Amend {
                order,
                trader,
                quantity,
                price,
            } => {
                let checked = match self.status {
                    BookStatus::Delisted => Err(OrderReject::Delisted),
                    BookStatus::Halted => Err(OrderReject::Halted),
                    BookStatus::Open => self.owned(*order, *trader).and_then(|found| {
                        check_amend(&self.spec, *quantity, *price).map(|()| found)
                    }),
                };
                let (side, old_price, r) = match checked {
                    Ok(v) => v,
                    Err(e) => return reject(out, Some(*order), e),
                };
                let new_price = price.map_or(old_price, |p| p.0);
                if new_price != old_price
                    && self
                        .best_price(side.opposite())
                        .is_some_and(|p| acceptable(side, Some(Price(new_price)), Price(p)))
                {
                    return reject(out, Some(*order), OrderReject::AmendWouldCross);
                }
                let keep = new_price == old_price && quantity.0 <= r.qty;
                if keep {
                    let queue = self.side_mut(side).get_mut(&old_price).expect("level");
                    queue
                        .iter_mut()
                        .find(|x| x.id == *order)
                        .expect("order")
                        .qty = quantity.0;
                } else {
                    self.take(*order);
                    self.add(
                        side,
                        new_price,
                        Resting {
                            qty: quantity.0,
                            ..r
                        },
                    );
                }
                out.push(Event::Amended {
                    order: *order,
                    price: Price(new_price),
                    quantity: *quantity,
                    priority_kept: keep,
                });
            }
            Command::Halt | Command::Resume | Command::Delist
                if self.status == BookStatus::Delisted =>
            {
                reject(out, None, OrderReject::Delisted)
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
            Command::Delist => {
                for side in [Side::Buy, Side::Sell] {
                    for (_, r) in self.in_priority(side) {
                        self.take(r.id);
                        out.push(Event::Cancelled {
                            order: r.id,
                            remaining: Qty(r.qty),
                            reason: CancelReason::Delisted,
                        });
                    }
                }
                self.status = BookStatus::Delisted;
                out.push(Event::Status {
                    status: BookStatus::Delisted,
                });
            }
        }
    }

    fn status(&self) -> BookStatus {
        self.status
    }

    fn depth(&self, side: Side, max_levels: usize) -> Vec<Level> {
        let level = |(p, q): (&u64, &VecDeque<Resting>)| Level {
            price: Price(*p),
            quantity: Qty(q.iter().map(|r| r.qty).sum()),
            orders: u32::try_from(q.len()).unwrap_or(u32::MAX),
        };
        match side {
            Side::Buy => self.bids.iter().rev().take(max_levels).map(level).collect(),
            Side::Sell => self.asks.iter().take(max_levels).map(level).collect(),
        }
    }

    fn last_trade(&self) -> Option<(Price, Qty)> {
        self.last_trade
    }

    fn open_orders(&self) -> usize {
        self.location.len()
    }

    fn snapshot(&self) -> Snapshot {
        let orders = |side| {
            self.in_priority(side)
                .into_iter()
                .map(|(p, r)| RestingOrder {
                    id: r.id,
                    trader: r.trader,
                    price: Price(p),
                    quantity: Qty(r.qty),
                })
                .collect()
        };
        Snapshot {
            status: self.status,
            bids: orders(Side::Buy),
            asks: orders(Side::Sell),
            last_trade: self.last_trade,
        }
    }
}
