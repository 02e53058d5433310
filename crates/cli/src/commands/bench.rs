//! `tranche bench`: measured performance, with a baseline run in the same
//! invocation so that ratios hold on a noisy machine.
#![allow(clippy::disallowed_methods)] // a benchmark reads the clock by nature

use anyhow::Result;
use clap::Subcommand;
use rustc_hash::FxHashMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tranche_matching::{
    Book, Command, Event, InstrumentSpec, NewOrder, OrderBook, Price, Qty, Quote, ReferenceBook,
    SelfTradePrevention, Side, TimeInForce, TraderId,
};
use tranche_types::{Currency, OrderId, TokenId};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// The whole chain: finalized transfers per second and submit-to-finality
    /// latency on a local network of four validator processes.
    ///
    /// Starts a devnet in a temporary folder (its own ports), issues a token
    /// to --senders verified wallets, signs --per-sender transfers from each
    /// in advance, then submits them all through the node API (spread over the
    /// four nodes, --clients at a time) while watching finalized blocks. The
    /// last line is one JSON object. Build with --release.
    ///
    /// Example:
    ///   cargo run --release --bin tranche -- bench chain
    #[command(verbatim_doc_comment)]
    Chain(crate::commands::bench_chain::ChainArgs),
    /// The ledger: signed, compliance-checked transfers against verifying
    /// their signatures alone.
    ///
    /// Builds a network with one security token held by many verified
    /// investors, signs a stream of holder transfers between them, then
    /// measures, in the same run and on one core: (a) applying them in blocks,
    /// each block's signatures batch-verified and each transfer checked against
    /// every compliance rule; (b) only batch-verifying the same blocks. The
    /// ratio a/b is how much of the signature rate the ledger keeps. The last
    /// line is one JSON object. Build with --release for meaningful numbers.
    ///
    /// Example:
    ///   cargo run --release --bin tranche -- bench ledger
    #[command(verbatim_doc_comment)]
    Ledger {
        /// Investors holding the token.
        #[arg(long, default_value_t = 1_000)]
        holders: usize,
        /// Transfers measured.
        #[arg(long, default_value_t = 20_000)]
        txs: usize,
        /// Transfers per block.
        #[arg(long, default_value_t = 500)]
        block: usize,
        /// Rounds; the best is kept.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// The matching engine against a plain BTreeMap-of-VecDeque book.
    ///
    /// For each book size, fills a book with that many resting orders, then
    /// replays the same deterministic mix on the engine and on the baseline:
    /// about half new resting limit orders, a third cancels, the rest
    /// marketable orders. Single-threaded. Throughput is the best of several
    /// rounds; latency percentiles come from a separate, timed-per-operation
    /// round of the engine. The last line is one JSON object. Build with
    /// --release for meaningful numbers.
    ///
    /// Example:
    ///   cargo run --release --bin tranche -- bench matching
    #[command(verbatim_doc_comment)]
    Matching {
        /// Resting orders in the book before measuring, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000")]
        sizes: Vec<usize>,
        /// Operations measured per book size.
        #[arg(long, default_value_t = 300_000)]
        ops: usize,
        /// Rounds of throughput measurement; the best is kept.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Seed of the workload.
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
}

pub fn run(cmd: BenchCommand) -> Result<ExitCode> {
    match cmd {
        BenchCommand::Chain(args) => crate::commands::bench_chain::run(args),
        BenchCommand::Ledger {
            holders,
            txs,
            block,
            rounds,
        } => crate::commands::bench_ledger::run(holders, txs, block, rounds.max(1)),
        BenchCommand::Matching {
            sizes,
            ops,
            rounds,
            seed,
        } => matching(&sizes, ops, rounds.max(1), seed),
    }
}

/// SplitMix64: a tiny, well-known generator; the workload only needs to be
/// reproducible, not unpredictable.
pub(crate) struct SplitMix(pub(crate) u64);

impl SplitMix {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
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

pub(crate) fn per_second(ops: usize, d: Duration) -> u64 {
    let ns = d.as_nanos().max(1);
    u64::try_from(ops as u128 * 1_000_000_000 / ns).unwrap_or(u64::MAX)
}

fn matching(sizes: &[usize], ops: usize, rounds: usize, seed: u64) -> Result<ExitCode> {
    if sizes.is_empty() || ops == 0 {
        super::usage!("--sizes and --ops must not be empty or zero");
    }
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; use --release for meaningful numbers");
    }
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
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::float_arithmetic)] // a ratio of durations for the report
pub(crate) fn ratio(baseline: Duration, engine: Duration) -> f64 {
    baseline.as_secs_f64() / engine.as_secs_f64().max(1e-12)
}
