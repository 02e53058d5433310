//! Every order type, every rejection and every event, through the public API,
//! on both the fast book and the reference book.

use tranche_matching::*;
use tranche_types::{Currency, OrderId, TokenId};

fn spec() -> InstrumentSpec {
    InstrumentSpec {
        base: TokenId::new("SEOUL-TOWER-1").unwrap(),
        quote: Quote::Currency(Currency::known("USD").unwrap()),
        tick: 5,
        lot: 1,
        open_orders_per_trader_max: 3,
    }
}

const ALICE: TraderId = TraderId(1);
const BOB: TraderId = TraderId(2);
const CAROL: TraderId = TraderId(3);

fn order(
    id: u64,
    trader: TraderId,
    side: Side,
    price: Option<u64>,
    qty: u64,
    tif: TimeInForce,
) -> Command {
    Command::Submit(NewOrder {
        id: OrderId(id),
        trader,
        side,
        price: price.map(Price),
        quantity: Qty(qty),
        tif,
        stp: SelfTradePrevention::CancelNewest,
    })
}

fn gtc(id: u64, trader: TraderId, side: Side, price: u64, qty: u64) -> Command {
    order(id, trader, side, Some(price), qty, TimeInForce::Gtc)
}

fn with_stp(cmd: Command, stp: SelfTradePrevention) -> Command {
    match cmd {
        Command::Submit(o) => Command::Submit(NewOrder { stp, ..o }),
        other => other,
    }
}

/// Runs `f` against both books so every expectation holds for each.
fn both(f: impl Fn(&mut dyn FnMut(&Command) -> Vec<Event>, &dyn Fn() -> Snapshot)) {
    let mut fast = Book::new(spec()).unwrap();
    let fast_cell = std::cell::RefCell::new(&mut fast);
    f(
        &mut |c| {
            let mut out = Vec::new();
            fast_cell.borrow_mut().execute(c, &mut out);
            fast_cell.borrow().check_invariants();
            out
        },
        &|| fast_cell.borrow().snapshot(),
    );
    let reference = std::cell::RefCell::new(ReferenceBook::new(spec()).unwrap());
    f(
        &mut |c| {
            let mut out = Vec::new();
            reference.borrow_mut().execute(c, &mut out);
            out
        },
        &|| reference.borrow().snapshot(),
    );
}

fn rejected(events: &[Event]) -> Option<OrderReject> {
    match events {
        [Event::Rejected { reason, .. }] => Some(*reason),
        _ => None,
    }
}

fn trades(events: &[Event]) -> Vec<(u64, u64, u64, u64)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Trade {
                maker,
                taker,
                price,
                quantity,
                ..
            } => Some((maker.0, taker.0, price.0, quantity.0)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_limit_order_rests_then_trades_at_the_makers_price() {
    both(|run, snap| {
        let ev = run(&gtc(1, ALICE, Side::Sell, 100, 10));
        assert!(matches!(ev[..], [Event::Accepted { .. }]));
        assert_eq!(snap().asks.len(), 1);
        let ev = run(&gtc(2, BOB, Side::Buy, 105, 4));
        assert_eq!(trades(&ev), vec![(1, 2, 100, 4)]);
        assert!(matches!(ev.last(), Some(Event::Done { order: OrderId(2) })));
        assert_eq!(snap().asks[0].quantity, Qty(6));
        assert_eq!(snap().last_trade, Some((Price(100), Qty(4))));
    });
}

#[test]
fn price_then_time_priority() {
    both(|run, snap| {
        run(&gtc(1, ALICE, Side::Sell, 105, 1));
        run(&gtc(2, BOB, Side::Sell, 100, 1));
        run(&gtc(3, CAROL, Side::Sell, 100, 1));
        let ev = run(&order(4, TraderId(9), Side::Buy, None, 3, TimeInForce::Ioc));
        // Best price first; at one price, the earliest first.
        assert_eq!(
            trades(&ev),
            vec![(2, 4, 100, 1), (3, 4, 100, 1), (1, 4, 105, 1)]
        );
        assert!(snap().asks.is_empty());
    });
}

#[test]
fn a_gtc_remainder_rests_after_trading() {
    both(|run, snap| {
        run(&gtc(1, ALICE, Side::Sell, 100, 2));
        let ev = run(&gtc(2, BOB, Side::Buy, 100, 5));
        assert_eq!(trades(&ev), vec![(1, 2, 100, 2)]);
        assert_eq!(
            snap().bids,
            vec![RestingOrder {
                id: OrderId(2),
                trader: BOB,
                price: Price(100),
                quantity: Qty(3)
            }]
        );
    });
}

#[test]
fn market_orders_take_what_there_is_and_cancel_the_rest() {
    both(|run, snap| {
        run(&gtc(1, ALICE, Side::Buy, 95, 2));
        let ev = run(&order(2, BOB, Side::Sell, None, 5, TimeInForce::Ioc));
        assert_eq!(trades(&ev), vec![(1, 2, 95, 2)]);
        assert!(matches!(
            ev.last(),
            Some(Event::Cancelled {
                order: OrderId(2),
                remaining: Qty(3),
                reason: CancelReason::Unfilled
            })
        ));
        assert!(snap().bids.is_empty() && snap().asks.is_empty());
        // With nothing to trade against, a market order is accepted and cancelled whole.
        let ev = run(&order(3, BOB, Side::Sell, None, 1, TimeInForce::Ioc));
        assert!(matches!(
            ev[..],
            [
                Event::Accepted { .. },
                Event::Cancelled {
                    remaining: Qty(1),
                    ..
                }
            ]
        ));
    });
}

#[test]
fn ioc_limit_orders_never_rest() {
    both(|run, snap| {
        run(&gtc(1, ALICE, Side::Sell, 100, 1));
        let ev = run(&order(2, BOB, Side::Buy, Some(100), 3, TimeInForce::Ioc));
        assert_eq!(trades(&ev).len(), 1);
        assert!(matches!(
            ev.last(),
            Some(Event::Cancelled {
                remaining: Qty(2),
                ..
            })
        ));
        assert!(snap().bids.is_empty());
    });
}

#[test]
fn fill_or_kill_fills_whole_or_not_at_all() {
    both(|run, snap| {
        run(&gtc(1, ALICE, Side::Sell, 100, 2));
        run(&gtc(2, BOB, Side::Sell, 105, 2));
        let before = snap();
        let ev = run(&order(3, CAROL, Side::Buy, Some(100), 3, TimeInForce::Fok));
        assert_eq!(rejected(&ev), Some(OrderReject::FillOrKillUnfillable));
        assert_eq!(snap(), before, "a refused FOK changes nothing");
        let ev = run(&order(4, CAROL, Side::Buy, Some(105), 3, TimeInForce::Fok));
        assert_eq!(trades(&ev), vec![(1, 4, 100, 2), (2, 4, 105, 1)]);
        assert!(matches!(ev.last(), Some(Event::Done { order: OrderId(4) })));
    });
}

#[test]
fn fill_or_kill_does_not_count_own_orders() {
    both(|run, _| {
        run(&gtc(1, ALICE, Side::Sell, 100, 5));
        run(&gtc(2, BOB, Side::Sell, 100, 1));
        let ev = run(&order(3, ALICE, Side::Buy, Some(100), 2, TimeInForce::Fok));
        assert_eq!(rejected(&ev), Some(OrderReject::FillOrKillUnfillable));
    });
}

#[test]
fn post_only_rests_or_is_refused() {
    both(|run, snap| {
        run(&gtc(1, ALICE, Side::Sell, 100, 1));
        let ev = run(&order(
            2,
            BOB,
            Side::Buy,
            Some(100),
            1,
            TimeInForce::PostOnly,
        ));
        assert_eq!(rejected(&ev), Some(OrderReject::PostOnlyWouldCross));
        let ev = run(&order(
            3,
            BOB,
            Side::Buy,
            Some(95),
            1,
            TimeInForce::PostOnly,
        ));
        assert!(matches!(ev[..], [Event::Accepted { .. }]));
        assert_eq!(snap().bids.len(), 1);
    });
}

#[test]
fn cancel_removes_a_resting_order() {
    both(|run, snap| {
        run(&gtc(1, ALICE, Side::Buy, 100, 7));
        let ev = run(&Command::Cancel {
            order: OrderId(1),
            trader: BOB,
        });
        assert_eq!(rejected(&ev), Some(OrderReject::NotOrderOwner));
        let ev = run(&Command::Cancel {
            order: OrderId(1),
            trader: ALICE,
        });
        assert!(matches!(
            ev[..],
            [Event::Cancelled {
                order: OrderId(1),
                remaining: Qty(7),
                reason: CancelReason::Requested
            }]
        ));
        assert!(snap().bids.is_empty());
        let ev = run(&Command::Cancel {
            order: OrderId(1),
            trader: ALICE,
        });
        assert_eq!(rejected(&ev), Some(OrderReject::UnknownOrder));
    });
}

#[test]
fn amend_down_keeps_priority_and_a_new_price_loses_it() {
    both(|run, snap| {
        run(&gtc(1, ALICE, Side::Buy, 100, 5));
        run(&gtc(2, BOB, Side::Buy, 100, 5));
        let ev = run(&Command::Amend {
            order: OrderId(1),
            trader: ALICE,
            quantity: Qty(3),
            price: None,
        });
        assert!(matches!(
            ev[..],
            [Event::Amended {
                priority_kept: true,
                quantity: Qty(3),
                ..
            }]
        ));
        assert_eq!(snap().bids[0].id, OrderId(1), "still first");
        // Growing the quantity sends it to the back.
        let ev = run(&Command::Amend {
            order: OrderId(1),
            trader: ALICE,
            quantity: Qty(4),
            price: None,
        });
        assert!(matches!(
            ev[..],
            [Event::Amended {
                priority_kept: false,
                ..
            }]
        ));
        assert_eq!(snap().bids[0].id, OrderId(2));
        // A new price sends it to the back of the new level.
        run(&gtc(3, CAROL, Side::Buy, 90, 1));
        let ev = run(&Command::Amend {
            order: OrderId(2),
            trader: BOB,
            quantity: Qty(5),
            price: Some(Price(90)),
        });
        assert!(matches!(
            ev[..],
            [Event::Amended {
                priority_kept: false,
                price: Price(90),
                ..
            }]
        ));
        let ids: Vec<_> = snap().bids.iter().map(|o| o.id.0).collect();
        assert_eq!(ids, vec![1, 3, 2]);
    });
}

#[test]
fn amend_never_trades() {
    both(|run, _| {
        run(&gtc(1, ALICE, Side::Sell, 100, 1));
        run(&gtc(2, BOB, Side::Buy, 95, 1));
        let ev = run(&Command::Amend {
            order: OrderId(2),
            trader: BOB,
            quantity: Qty(1),
            price: Some(Price(100)),
        });
        assert_eq!(rejected(&ev), Some(OrderReject::AmendWouldCross));
        let ev = run(&Command::Amend {
            order: OrderId(2),
            trader: BOB,
            quantity: Qty(0),
            price: None,
        });
        assert_eq!(rejected(&ev), Some(OrderReject::ZeroQuantity));
        let ev = run(&Command::Amend {
            order: OrderId(2),
            trader: BOB,
            quantity: Qty(1),
            price: Some(Price(93)),
        });
        assert_eq!(rejected(&ev), Some(OrderReject::TickSize));
        let ev = run(&Command::Amend {
            order: OrderId(9),
            trader: BOB,
            quantity: Qty(1),
            price: None,
        });
        assert_eq!(rejected(&ev), Some(OrderReject::UnknownOrder));
    });
}

#[test]
fn self_trade_prevention_cancel_newest() {
    both(|run, snap| {
        run(&gtc(1, ALICE, Side::Sell, 100, 1));
        run(&gtc(2, BOB, Side::Sell, 100, 1));
        run(&gtc(3, ALICE, Side::Sell, 100, 1));
        let ev = run(&with_stp(
            gtc(4, BOB, Side::Buy, 100, 3),
            SelfTradePrevention::CancelNewest,
        ));
        assert_eq!(trades(&ev), vec![(1, 4, 100, 1)]);
        assert!(matches!(
            ev.last(),
            Some(Event::Cancelled {
                order: OrderId(4),
                remaining: Qty(2),
                reason: CancelReason::SelfTrade
            })
        ));
        assert_eq!(snap().asks.len(), 2, "bob's resting order stays");
    });
}

#[test]
fn self_trade_prevention_cancel_oldest() {
    both(|run, snap| {
        run(&gtc(1, BOB, Side::Sell, 100, 1));
        run(&gtc(2, ALICE, Side::Sell, 100, 1));
        let ev = run(&with_stp(
            gtc(3, BOB, Side::Buy, 100, 1),
            SelfTradePrevention::CancelOldest,
        ));
        assert!(matches!(
            ev[1],
            Event::Cancelled {
                order: OrderId(1),
                reason: CancelReason::SelfTrade,
                ..
            }
        ));
        assert_eq!(trades(&ev), vec![(2, 3, 100, 1)]);
        assert!(snap().asks.is_empty());
    });
}

#[test]
fn self_trade_prevention_cancel_both() {
    both(|run, snap| {
        run(&gtc(1, BOB, Side::Sell, 100, 1));
        run(&gtc(2, ALICE, Side::Sell, 100, 1));
        let ev = run(&with_stp(
            gtc(3, BOB, Side::Buy, 100, 1),
            SelfTradePrevention::CancelBoth,
        ));
        assert!(trades(&ev).is_empty());
        let cancelled: Vec<_> = ev
            .iter()
            .filter_map(|e| match e {
                Event::Cancelled {
                    order,
                    reason: CancelReason::SelfTrade,
                    ..
                } => Some(order.0),
                _ => None,
            })
            .collect();
        assert_eq!(cancelled, vec![1, 3]);
        assert_eq!(snap().asks.len(), 1);
        assert!(snap().bids.is_empty());
    });
}

#[test]
fn order_shape_rejections() {
    both(|run, _| {
        assert_eq!(
            rejected(&run(&gtc(1, ALICE, Side::Buy, 100, 0))),
            Some(OrderReject::ZeroQuantity)
        );
        assert_eq!(
            rejected(&run(&gtc(1, ALICE, Side::Buy, 0, 1))),
            Some(OrderReject::ZeroPrice)
        );
        assert_eq!(
            rejected(&run(&gtc(1, ALICE, Side::Buy, 101, 1))),
            Some(OrderReject::TickSize)
        );
        assert_eq!(
            rejected(&run(&order(1, ALICE, Side::Buy, None, 1, TimeInForce::Gtc))),
            Some(OrderReject::MarketMustNotRest)
        );
        assert_eq!(
            rejected(&run(&order(
                1,
                ALICE,
                Side::Buy,
                None,
                1,
                TimeInForce::PostOnly
            ))),
            Some(OrderReject::MarketMustNotRest)
        );
        run(&gtc(1, ALICE, Side::Buy, 100, 1));
        assert_eq!(
            rejected(&run(&gtc(1, ALICE, Side::Buy, 95, 1))),
            Some(OrderReject::DuplicateOrderId)
        );
    });
}

#[test]
fn lot_size_is_enforced() {
    let mut book = Book::new(InstrumentSpec { lot: 10, ..spec() }).unwrap();
    let mut out = Vec::new();
    book.execute(&gtc(1, ALICE, Side::Buy, 100, 15), &mut out);
    assert_eq!(rejected(&out), Some(OrderReject::LotSize));
    out.clear();
    book.execute(&gtc(2, ALICE, Side::Buy, 100, 20), &mut out);
    assert!(matches!(out[..], [Event::Accepted { .. }]));
    out.clear();
    book.execute(
        &Command::Amend {
            order: OrderId(2),
            trader: ALICE,
            quantity: Qty(15),
            price: None,
        },
        &mut out,
    );
    assert_eq!(rejected(&out), Some(OrderReject::LotSize));
}

#[test]
fn the_open_order_limit_holds_per_trader() {
    both(|run, _| {
        for id in 1..=3 {
            run(&gtc(id, ALICE, Side::Buy, 100, 1));
        }
        assert_eq!(
            rejected(&run(&gtc(4, ALICE, Side::Buy, 100, 1))),
            Some(OrderReject::TooManyOpenOrders)
        );
        // Orders that cannot rest are not limited, and others are not affected.
        assert!(rejected(&run(&order(
            5,
            ALICE,
            Side::Sell,
            None,
            1,
            TimeInForce::Ioc
        )))
        .is_none());
        assert!(rejected(&run(&gtc(6, BOB, Side::Buy, 100, 1))).is_none());
        // Room frees up when an order leaves.
        run(&Command::Cancel {
            order: OrderId(2),
            trader: ALICE,
        });
        assert!(rejected(&run(&gtc(7, ALICE, Side::Buy, 100, 1))).is_none());
    });
}

#[test]
fn a_halted_book_matches_nothing_but_accepts_cancels() {
    both(|run, snap| {
        run(&gtc(1, ALICE, Side::Buy, 100, 1));
        assert!(matches!(
            run(&Command::Halt)[..],
            [Event::Status {
                status: BookStatus::Halted
            }]
        ));
        assert_eq!(
            rejected(&run(&gtc(2, BOB, Side::Sell, 100, 1))),
            Some(OrderReject::Halted)
        );
        let amend = Command::Amend {
            order: OrderId(1),
            trader: ALICE,
            quantity: Qty(1),
            price: Some(Price(95)),
        };
        assert_eq!(rejected(&run(&amend)), Some(OrderReject::Halted));
        assert!(matches!(
            run(&Command::Cancel {
                order: OrderId(1),
                trader: ALICE
            })[..],
            [Event::Cancelled { .. }]
        ));
        assert!(matches!(
            run(&Command::Resume)[..],
            [Event::Status {
                status: BookStatus::Open
            }]
        ));
        run(&gtc(3, ALICE, Side::Buy, 100, 1));
        assert_eq!(trades(&run(&gtc(4, BOB, Side::Sell, 100, 1))).len(), 1);
        assert_eq!(snap().status, BookStatus::Open);
    });
}

#[test]
fn delisting_cancels_every_resting_order_for_good() {
    both(|run, snap| {
        run(&gtc(1, ALICE, Side::Buy, 95, 1));
        run(&gtc(2, BOB, Side::Buy, 100, 1));
        run(&gtc(3, CAROL, Side::Sell, 110, 2));
        let ev = run(&Command::Delist);
        let cancelled: Vec<_> = ev
            .iter()
            .filter_map(|e| match e {
                Event::Cancelled {
                    order,
                    reason: CancelReason::Delisted,
                    ..
                } => Some(order.0),
                _ => None,
            })
            .collect();
        assert_eq!(cancelled, vec![2, 1, 3], "bids best first, then asks");
        assert!(matches!(
            ev.last(),
            Some(Event::Status {
                status: BookStatus::Delisted
            })
        ));
        assert!(snap().bids.is_empty() && snap().asks.is_empty());
        assert_eq!(
            rejected(&run(&gtc(4, ALICE, Side::Buy, 95, 1))),
            Some(OrderReject::Delisted)
        );
        assert_eq!(
            rejected(&run(&Command::Cancel {
                order: OrderId(1),
                trader: ALICE
            })),
            Some(OrderReject::Delisted)
        );
        assert_eq!(
            rejected(&run(&Command::Resume)),
            Some(OrderReject::Delisted)
        );
        assert_eq!(
            rejected(&run(&Command::Delist)),
            Some(OrderReject::Delisted)
        );
    });
}

#[test]
fn market_data_best_depth_and_last_trade() {
    let mut book = Book::new(spec()).unwrap();
    let mut out = Vec::new();
    for (id, side, price, qty) in [
        (1, Side::Buy, 100, 2),
        (2, Side::Buy, 100, 3),
        (3, Side::Buy, 95, 1),
        (4, Side::Sell, 110, 4),
    ] {
        book.execute(&gtc(id, TraderId(id), side, price, qty), &mut out);
    }
    assert_eq!(
        book.best(Side::Buy),
        Some(Level {
            price: Price(100),
            quantity: Qty(5),
            orders: 2
        })
    );
    assert_eq!(
        book.best(Side::Sell),
        Some(Level {
            price: Price(110),
            quantity: Qty(4),
            orders: 1
        })
    );
    assert_eq!(book.depth(Side::Buy, 10).len(), 2);
    assert_eq!(book.depth(Side::Buy, 1)[0].price, Price(100));
    assert_eq!(book.last_trade(), None);
    book.execute(&gtc(5, TraderId(5), Side::Sell, 100, 1), &mut out);
    assert_eq!(book.last_trade(), Some((Price(100), Qty(1))));
    assert_eq!(book.open_orders(), 4);
}

#[test]
fn the_engine_lists_pairs_of_every_kind_and_refuses_unknown_ones() {
    let mut engine: MatchingEngine = MatchingEngine::new();
    let token = TokenId::new("SEOUL-TOWER-1").unwrap();
    let mut ids = Vec::new();
    for quote in [
        Quote::Currency(Currency::known("USD").unwrap()),
        Quote::Currency(Currency::known("EUR").unwrap()),
        Quote::Currency(Currency::new("DKRW", tranche_types::CurrencyKind::Cbdc, 0).unwrap()),
        Quote::Currency(Currency::known("BTC").unwrap()),
        Quote::Currency(Currency::known("ETH").unwrap()),
        Quote::Token(TokenId::new("FILM-7").unwrap()),
    ] {
        ids.push(
            engine
                .list(InstrumentSpec::new(token.clone(), quote))
                .unwrap(),
        );
    }
    assert_eq!(ids[0].as_str(), "SEOUL-TOWER-1/USD");
    assert_eq!(engine.instruments().count(), 6);
    assert!(engine
        .list(InstrumentSpec::new(
            token.clone(),
            Quote::Currency(Currency::known("USD").unwrap())
        ))
        .is_err());
    assert!(Book::new(InstrumentSpec { tick: 0, ..spec() }).is_err());

    let mut out = Vec::new();
    engine.execute(&ids[5], &gtc(1, ALICE, Side::Buy, 3, 1), &mut out);
    assert!(matches!(out[..], [Event::Accepted { .. }]));
    out.clear();
    let unknown = InstrumentId::new("NOPE/USD").unwrap();
    engine.execute(&unknown, &gtc(2, ALICE, Side::Buy, 3, 1), &mut out);
    assert_eq!(rejected(&out), Some(OrderReject::UnknownInstrument));
}

#[test]
fn reject_codes_are_stable_and_unique() {
    let mut codes: Vec<u16> = OrderReject::ALL.iter().map(|r| r.code()).collect();
    codes.dedup();
    assert_eq!(codes.len(), OrderReject::ALL.len());
    assert_eq!(OrderReject::ZeroQuantity.code(), 1);
    assert_eq!(OrderReject::UnknownInstrument.code(), 15);
    for r in OrderReject::ALL {
        assert!(!r.message().is_empty());
        let json = serde_json::to_string(r).unwrap();
        assert_eq!(json, format!("\"{}\"", r.name()));
    }
}

#[test]
fn events_serialize_for_a_journal() {
    let mut book = Book::new(spec()).unwrap();
    let mut out = Vec::new();
    book.execute(&gtc(1, ALICE, Side::Sell, 100, 1), &mut out);
    book.execute(&gtc(2, BOB, Side::Buy, 100, 1), &mut out);
    let json = serde_json::to_string(&out).unwrap();
    let back: Vec<Event> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, out);
    let rebuilt = Book::rebuild(spec(), &back).unwrap();
    assert_eq!(rebuilt.snapshot(), book.snapshot());
}

#[test]
fn many_cancels_in_one_level_keep_priority() {
    let mut book = Book::new(InstrumentSpec {
        open_orders_per_trader_max: 1_000,
        ..spec()
    })
    .unwrap();
    let mut out = Vec::new();
    for id in 1..=200 {
        book.execute(&gtc(id, ALICE, Side::Buy, 100, 1), &mut out);
    }
    // Cancel all but every tenth: far more dead than live at one price.
    for id in (1..=200).filter(|id| id % 10 != 0) {
        book.execute(
            &Command::Cancel {
                order: OrderId(id),
                trader: ALICE,
            },
            &mut out,
        );
        book.check_invariants();
    }
    let ids: Vec<u64> = book.snapshot().bids.iter().map(|o| o.id.0).collect();
    assert_eq!(
        ids,
        (1..=20).map(|i| i * 10).collect::<Vec<_>>(),
        "priority survives compaction"
    );
    // Matching walks past nothing dead and fills in time order.
    out.clear();
    book.execute(
        &order(999, BOB, Side::Sell, None, 3, TimeInForce::Ioc),
        &mut out,
    );
    let makers: Vec<u64> = trades(&out).iter().map(|t| t.0).collect();
    assert_eq!(makers, vec![10, 20, 30]);
    book.check_invariants();
}
