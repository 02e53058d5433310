//! `tranche bench matching`: the matching engine against a plain
//! BTreeMap-of-VecDeque book, on the same deterministic workload.
#![allow(clippy::disallowed_methods)] // a benchmark reads the clock by nature

use crate::{per_second, ratio, SplitMix};
use anyhow::{bail, Result};
use rustc_hash::FxHashMap;
use std::time::{Duration, Instant};
use tranche_matching::{
    Book, Command, Event, InstrumentSpec, NewOrder, OrderBook, Price, Qty, Quote, ReferenceBook,
    SelfTradePrevention, Side, TimeInForce, TraderId,
};
use tranche_types::{Currency, OrderId, TokenId};

/// What `tranche bench matching` measures.
#[derive(Debug, Clone)]
pub struct Options {
    /// Resting orders in the book before measuring, one run per size.
    pub sizes: Vec<usize>,
    /// Operations measured per book size.
    pub ops: usize,
    /// Rounds of throughput measurement; the best is kept.
    pub rounds: usize,
    /// Seed of the workload.
    pub seed: u64,
}

const MID: u64 = 100_000;
const TRADERS: u64 = 1_000;

fn spec() -> InstrumentSpec {
    InstrumentSpec {
        base: TokenId::new("BENCH").expect("valid token id"),
        quote: Quote::Currency(Currency::known("USD").expect("USD is known")),
        tick: 1,
        lot: 1,
        open_orders_per_trader_max: u32::MAX,
    }
}

/// Resting orders and their traders, for picking cancels in O(1).
#[derive(Default)]
struct Live {
    ids: Vec<(OrderId, TraderId)>,
    at: FxHashMap<OrderId, usize>,
}

impl Live {
    fn add(&mut self, id: OrderId, trader: TraderId) {
        self.at.insert(id, self.ids.len());
        self.ids.push((id, trader));
    }

    fn remove(&mut self, id: OrderId) {
        if let Some(i) = self.at.remove(&id) {
            self.ids.swap_remove(i);
            if let Some((moved, _)) = self.ids.get(i) {
                self.at.insert(*moved, i);
            }
        }
    }

    /// Follows one command's events: an accepted priced order rests unless
    /// it is done or cancelled in the same command.
    fn track(&mut self, events: &[Event]) {
        let mut accepted = None;
        for e in events {
            match e {
                Event::Accepted {
                    order,
                    trader,
                    price: Some(_),
                    ..
                } => accepted = Some((*order, *trader)),
                Event::Done { order } | Event::Cancelled { order, .. } => {
                    if accepted.is_some_and(|(id, _)| id == *order) {
                        accepted = None;
                    }
                    self.remove(*order);
                }
                _ => {}
            }
        }
        if let Some((id, trader)) = accepted {
            self.add(id, trader);
        }
    }
}

struct Workload {
    prefill: Vec<Command>,
    ops: Vec<Command>,
}

/// Builds the workload by running it once on the reference book, so cancels
/// name orders that are live at that moment.
fn workload(size: usize, ops: usize, seed: u64) -> Workload {
    let mut rng = SplitMix(seed ^ (size as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
    let mut book = ReferenceBook::new(spec()).expect("valid spec");
    let mut live = Live::default();
    let mut next_id = 1u64;
    let mut events = Vec::new();
    let resting = |rng: &mut SplitMix, next_id: &mut u64| {
        // Offsets from the middle, skewed toward the best prices.
        let offset = 1 + rng.below(400) * rng.below(400) / 400;
        let side = if rng.below(2) == 0 {
            Side::Buy
        } else {
            Side::Sell
        };
        let price = match side {
            Side::Buy => MID - offset,
            Side::Sell => MID + offset,
        };
        *next_id += 1;
        Command::Submit(NewOrder {
            id: OrderId(*next_id),
            trader: TraderId(rng.below(TRADERS)),
            side,
            price: Some(Price(price)),
            quantity: Qty(1 + rng.below(100)),
            tif: TimeInForce::Gtc,
            stp: SelfTradePrevention::CancelNewest,
        })
    };
    let mut run = |cmd: &Command, live: &mut Live, events: &mut Vec<Event>| {
        events.clear();
        book.execute(cmd, events);
        live.track(events);
    };
    let mut prefill = Vec::with_capacity(size);
    while prefill.len() < size {
        let cmd = resting(&mut rng, &mut next_id);
        run(&cmd, &mut live, &mut events);
        prefill.push(cmd);
    }
    let mut list = Vec::with_capacity(ops);
    while list.len() < ops {
        // The mix, nudged so the book stays within 5% of its size: a resting
        // order becomes a cancel when the book is too full, and the reverse.
        let mut roll = rng.below(6);
        if roll < 3 && live.ids.len() > size + size / 20 {
            roll = 3;
        } else if (3..5).contains(&roll)
            && (live.ids.len() < size - size / 20 || live.ids.is_empty())
        {
            roll = 0;
        }
        let cmd = if roll < 3 {
            resting(&mut rng, &mut next_id)
        } else if roll < 5 {
            let (order, trader) = live.ids[rng.below(live.ids.len() as u64) as usize];
            Command::Cancel { order, trader }
        } else {
            next_id += 1;
            let side = if rng.below(2) == 0 {
                Side::Buy
            } else {
                Side::Sell
            };
            let price = if rng.below(2) == 0 {
                None
            } else {
                Some(Price(match side {
                    Side::Buy => MID + 3,
                    Side::Sell => MID - 3,
                }))
            };
            Command::Submit(NewOrder {
                id: OrderId(next_id),
                trader: TraderId(rng.below(TRADERS)),
                side,
                price,
                quantity: Qty(1 + rng.below(150)),
                tif: TimeInForce::Ioc,
                stp: SelfTradePrevention::CancelNewest,
            })
        };
        run(&cmd, &mut live, &mut events);
        list.push(cmd);
    }
    Workload { prefill, ops: list }
}

fn fresh<B: OrderBook>(w: &Workload) -> B {
    let mut book = B::new(spec()).expect("valid spec");
    let mut out = Vec::new();
    for cmd in &w.prefill {
        out.clear();
        book.execute(cmd, &mut out);
    }
    book
}

fn throughput<B: OrderBook>(w: &Workload) -> Duration {
    let mut book: B = fresh(w);
    let mut out = Vec::with_capacity(64);
    let start = Instant::now();
    for cmd in &w.ops {
        out.clear();
        book.execute(cmd, &mut out);
    }
    let elapsed = start.elapsed();
    std::hint::black_box(book.open_orders());
    elapsed
}

fn latencies(w: &Workload, into: &mut Vec<u64>) {
    let mut book: Book = fresh(w);
    let mut out = Vec::with_capacity(64);
    for cmd in &w.ops {
        out.clear();
        let start = Instant::now();
        book.execute(cmd, &mut out);
        into.push(u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX));
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    #[allow(clippy::float_arithmetic)] // a rank among samples, not money
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Runs the benchmark, a line per book size and then one JSON object.
pub fn run(options: &Options) -> Result<()> {
    let Options {
        sizes, ops, seed, ..
    } = options;
    let (ops, seed, rounds) = (*ops, *seed, options.rounds.max(1));
    if sizes.is_empty() || ops == 0 {
        bail!("give at least one book size and one operation");
    }
    crate::warn_if_debug();
    let (mut fast_total, mut base_total) = (Duration::ZERO, Duration::ZERO);
    let mut samples = Vec::with_capacity(ops * sizes.len());
    for &size in sizes {
        let w = workload(size, ops, seed);
        let (mut fast, mut base) = (Duration::MAX, Duration::MAX);
        for _ in 0..rounds {
            fast = fast.min(throughput::<Book>(&w));
            base = base.min(throughput::<ReferenceBook>(&w));
        }
        let mut lat = Vec::with_capacity(ops);
        latencies(&w, &mut lat);
        lat.sort_unstable();
        println!(
            "book {size:>7} resting: engine {:>10} ops/s, baseline {:>10} ops/s, ratio {:.2}, p50 {} ns, p99 {} ns, p99.9 {} ns",
            per_second(ops, fast),
            per_second(ops, base),
            ratio(base, fast),
            percentile(&lat, 0.50),
            percentile(&lat, 0.99),
            percentile(&lat, 0.999),
        );
        fast_total += fast;
        base_total += base;
        samples.extend(lat);
    }
    samples.sort_unstable();
    let total_ops = ops * sizes.len();
    // Keys in a fixed order, so the line reads the same in every report.
    println!(
        "{{\"bench\":\"matching\",\"ops_per_s\":{},\"baseline_ops_per_s\":{},\"ratio\":{:.2},\"p50_ns\":{},\"p99_ns\":{},\"p99_9_ns\":{}}}",
        per_second(total_ops, fast_total),
        per_second(total_ops, base_total),
        ratio(base_total, fast_total),
        percentile(&samples, 0.50),
        percentile(&samples, 0.99),
        percentile(&samples, 0.999),
    );
    Ok(())
}
