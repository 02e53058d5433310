//! The fast book against the reference model over thousands of random
//! command streams: identical events, intact structure, exact rebuild from
//! the journal, conserved quantity, trades at resting prices.

use proptest::prelude::*;
use std::collections::BTreeMap;
use tranche_matching::*;
use tranche_types::{Currency, OrderId, TokenId};

fn spec(tick: u64, lot: u64) -> InstrumentSpec {
    InstrumentSpec {
        base: TokenId::new("T").unwrap(),
        quote: Quote::Currency(Currency::known("USD").unwrap()),
        tick,
        lot,
        open_orders_per_trader_max: 6,
    }
}

fn arb_side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Buy), Just(Side::Sell)]
}

fn arb_command(tick: u64, lot: u64) -> impl Strategy<Value = Command> {
    let id = (1u64..40).prop_map(OrderId);
    let trader = (1u64..5).prop_map(TraderId);
    // Mostly valid prices and sizes, sometimes off-tick or off-lot.
    let price = prop_oneof![
        9 => (90u64..110).prop_map(move |p| Price(p * tick)),
        1 => (0u64..1000).prop_map(Price),
    ];
    let qty = prop_oneof![
        9 => (1u64..8).prop_map(move |q| Qty(q * lot)),
        1 => (0u64..20).prop_map(Qty),
    ];
    let tif = prop_oneof![
        5 => Just(TimeInForce::Gtc),
        2 => Just(TimeInForce::Ioc),
        1 => Just(TimeInForce::Fok),
        1 => Just(TimeInForce::PostOnly),
    ];
    let stp = prop_oneof![
        Just(SelfTradePrevention::CancelNewest),
        Just(SelfTradePrevention::CancelOldest),
        Just(SelfTradePrevention::CancelBoth),
    ];
    prop_oneof![
        60 => (id.clone(), trader.clone(), arb_side(), proptest::option::weighted(0.85, price.clone()), qty.clone(), tif, stp)
            .prop_map(|(id, trader, side, price, quantity, tif, stp)| Command::Submit(NewOrder { id, trader, side, price, quantity, tif, stp })),
        20 => (id.clone(), trader.clone()).prop_map(|(order, trader)| Command::Cancel { order, trader }),
        15 => (id, trader, qty, proptest::option::of(price))
            .prop_map(|(order, trader, quantity, price)| Command::Amend { order, trader, quantity, price }),
        3 => Just(Command::Halt),
        3 => Just(Command::Resume),
        1 => Just(Command::Delist),
    ]
}

/// Follows each order through the events: what it has open, and at what price.
#[derive(Default)]
struct Ledger {
    open: BTreeMap<OrderId, (u64, Option<Price>)>,
}

impl Ledger {
    fn apply(&mut self, e: &Event) -> Result<(), TestCaseError> {
        match *e {
            Event::Accepted {
                order,
                price,
                quantity,
                ..
            } => {
                prop_assert!(
                    self.open.insert(order, (quantity.0, price)).is_none(),
                    "{order} accepted twice"
                );
            }
            Event::Trade {
                maker,
                taker,
                price,
                quantity,
                ..
            } => {
                prop_assert!(quantity.0 > 0);
                let m = self.open.get_mut(&maker).expect("maker is open");
                prop_assert_eq!(m.1, Some(price), "trades happen at the maker's price");
                m.0 = m.0.checked_sub(quantity.0).expect("maker had enough");
                let t = self.open.get_mut(&taker).expect("taker is open");
                t.0 = t.0.checked_sub(quantity.0).expect("taker had enough");
            }
            Event::Cancelled {
                order, remaining, ..
            } => {
                let (left, _) = self.open.remove(&order).expect("cancelled order is open");
                prop_assert_eq!(left, remaining.0, "a cancel reports exactly what was left");
            }
            Event::Done { order } => {
                let (left, _) = self.open.remove(&order).expect("done order is open");
                prop_assert_eq!(left, 0, "done means nothing is left");
            }
            Event::Amended {
                order,
                price,
                quantity,
                ..
            } => {
                let o = self.open.get_mut(&order).expect("amended order is open");
                *o = (quantity.0, Some(price));
            }
            Event::Rejected { .. } | Event::Status { .. } => {}
        }
        Ok(())
    }
}

fn run_stream(tick: u64, lot: u64, commands: &[Command]) -> Result<(), TestCaseError> {
    let spec = spec(tick, lot);
    let mut fast = Book::new(spec.clone()).unwrap();
    let mut model = ReferenceBook::new(spec.clone()).unwrap();
    let mut journal = Vec::new();
    let mut ledger = Ledger::default();
    for (i, cmd) in commands.iter().enumerate() {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        fast.execute(cmd, &mut a);
        model.execute(cmd, &mut b);
        prop_assert_eq!(&a, &b, "command {} {:?}", i, cmd);
        prop_assert!(!a.is_empty(), "every command yields an event");
        fast.check_invariants();
        for e in &a {
            ledger.apply(e)?;
        }
        journal.extend(a);
    }
    let snapshot = fast.snapshot();
    prop_assert_eq!(&snapshot, &model.snapshot());
    // What is still open according to the events is exactly what rests.
    let mut resting: BTreeMap<OrderId, u64> = BTreeMap::new();
    for o in snapshot.bids.iter().chain(&snapshot.asks) {
        resting.insert(o.id, o.quantity.0);
    }
    let open: BTreeMap<OrderId, u64> = ledger.open.iter().map(|(k, v)| (*k, v.0)).collect();
    prop_assert_eq!(open, resting);
    // The journal rebuilds the exact book.
    let rebuilt = Book::rebuild(spec, &journal).unwrap();
    rebuilt.check_invariants();
    prop_assert_eq!(rebuilt.snapshot(), snapshot);
    for side in [Side::Buy, Side::Sell] {
        prop_assert_eq!(fast.depth(side, 5), model.depth(side, 5));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4_000))]

    #[test]
    fn fast_book_matches_the_model(commands in proptest::collection::vec(arb_command(1, 1), 1..160)) {
        run_stream(1, 1, &commands)?;
    }

    #[test]
    fn fast_book_matches_the_model_with_ticks_and_lots(commands in proptest::collection::vec(arb_command(5, 3), 1..160)) {
        run_stream(5, 3, &commands)?;
    }
}

#[test]
fn the_same_commands_give_the_same_events() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let commands = proptest::collection::vec(arb_command(1, 1), 500)
        .new_tree(&mut runner)
        .unwrap()
        .current();
    let run = || {
        let mut book = Book::new(spec(1, 1)).unwrap();
        let mut out = Vec::new();
        for c in &commands {
            book.execute(c, &mut out);
        }
        (out, book.snapshot())
    };
    assert_eq!(run(), run());
}

#[test]
fn a_journal_naming_an_unknown_maker_is_refused() {
    let events = vec![Event::Trade {
        maker: OrderId(1),
        maker_trader: TraderId(1),
        taker: OrderId(2),
        taker_trader: TraderId(2),
        taker_side: Side::Buy,
        price: Price(100),
        quantity: Qty(1),
    }];
    let err = Book::rebuild(spec(1, 1), &events).unwrap_err();
    assert_eq!(err.index, 0);
}
