//! `tranche bench`: the command line of `tranche-bench`.

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use std::process::ExitCode;
use tranche_bench::{chain, custody, exchange, ledger, matching, offering, reconcile, state};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// The whole chain: finalized transfers per second and submit-to-finality
    /// latency on a local network of four validator processes.
    ///
    /// Starts a devnet in a temporary folder (its own ports), issues a token
    /// to --senders verified wallets, signs --per-sender transfers from each
    /// in advance, then submits them all through the node API (spread over the
    /// four nodes, --clients at a time) while watching finalized blocks. With
    /// --holders, that many holders are first put on the chain through it
    /// (their own keys, wallets bound to their DIDs, KYC claims, 1,000 units
    /// each of a token of 1,000 holders), so the transfers run against a
    /// state of that size. The last line is one JSON object. Build with
    /// --release.
    ///
    /// Examples:
    ///   cargo run --release --bin tranche -- bench chain
    ///   cargo run --release --bin tranche -- bench chain --holders 100000
    #[command(verbatim_doc_comment)]
    Chain(ChainArgs),
    /// The primary market through the services: subscriptions per second
    /// through the TSP's API against plain transfers, and the time from an
    /// offering's close to the owner's payout.
    ///
    /// Starts a devnet with its role services in a temporary folder (its own
    /// ports). --investors people, each with their own key and DID, log in to
    /// the TSP and the escrow bank with presentations of KYC and
    /// jurisdiction credentials, have their wallets bound through the TSP
    /// and 100 USD deposited at the bank. Measured: (a) each sends a cent to
    /// the next, straight to the nodes; (b) each hands the TSP one
    /// subscription signed with their own key (POST /subscriptions), --clients
    /// at a time — both from the first request to the last transaction final.
    /// Then the bank closes the offering when its window ends, two issuer
    /// operators approve, the issuer issues, the bank pays the owner, and the
    /// TSP verifies the issuance; close_to_payout_ms is the chain time from
    /// the window's end to the payout's block. The last line is one JSON
    /// object. Build with --release.
    ///
    /// Example:
    ///   cargo run --release --bin tranche -- bench offering --investors 10000
    #[command(verbatim_doc_comment)]
    Offering {
        /// Investors, one subscription of one token each.
        #[arg(long, default_value_t = 10_000,
              value_parser = clap::value_parser!(u64).range(1..=offering::INVESTORS_MAX as u64))]
        investors: u64,
        /// Concurrent HTTP clients: investors subscribing at the same time.
        #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=1_024))]
        clients: u64,
        /// The subscription window, in seconds: every subscription must be
        /// final before it ends.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(2..=3_600))]
        window_secs: u64,
        /// First port of the benchmark's devnet.
        #[arg(long, default_value_t = 28500,
              value_parser = clap::value_parser!(u16).range(1024..=65_000))]
        base_port: u16,
    },
    /// The custodian's service: co-signed transfers per second through its
    /// API against plain transfers, and how soon holders are told.
    ///
    /// Starts a devnet with its role services in a temporary folder (its own
    /// ports). --holders people, each with their own key and DID, are KYC'd
    /// and have their wallets bound on chain, log in to the bank and the
    /// custodian with presentations, get deposit tokens from the bank, have
    /// a custodial wallet opened on their consent and put a dollar in it.
    /// Measured: (a) each sends a cent from their own wallet to the next
    /// holder, straight to the nodes; (b) each hands the custodian an
    /// authorization of a cent out of custody to the next holder (POST
    /// /instructions), --clients at a time (or --rate a second), which it
    /// checks and sends — both
    /// from the first request to the last transaction final; and (c) for
    /// each co-signed transfer, the time from the bench seeing its block
    /// final to its notice on the custodian's live stream (p50, p99). The
    /// last line is one JSON object. Build with --release.
    ///
    /// Example:
    ///   cargo run --release --bin tranche -- bench custody --holders 1000
    ///   cargo run --release --bin tranche -- bench custody --rate 400
    #[command(verbatim_doc_comment)]
    Custody {
        /// Holders, one plain and one co-signed transfer each.
        #[arg(long, default_value_t = 1_000,
              value_parser = clap::value_parser!(u64).range(1..=custody::HOLDERS_MAX as u64))]
        holders: u64,
        /// Concurrent HTTP clients: holders instructing at the same time.
        #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=1_024))]
        clients: u64,
        /// Instructions handed in per second, at a steady pace (still at
        /// most --clients at a time); without it, as fast as the clients
        /// go. Below the custodian's capacity the notices' latency is the
        /// service's own, not a queue's.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        rate: Option<u64>,
        /// First port of the benchmark's devnet.
        #[arg(long, default_value_t = 28600,
              value_parser = clap::value_parser!(u16).range(1024..=65_000))]
        base_port: u16,
    },
    /// The exchange's service: orders accepted per second end to end
    /// against the bare matching engine, trades settled on chain per second,
    /// and latencies.
    ///
    /// Starts a devnet with its role services in a temporary folder (its own
    /// ports). --traders people, each with their own key and DID, are KYC'd
    /// on chain, log in to the exchange with presentations and have the
    /// wallets it gives them bound to their DIDs; a token is issued to the
    /// sellers' (half of them) exchange wallets and USD credited to the
    /// buyers'. Measured: --orders limit orders around one price (about half
    /// of them crossing), each trader on a WebSocket of their own, from the
    /// first sent to the last acknowledged (each journaled before it is);
    /// the same orders through the bare engine in the same run; and every
    /// trade from its match to its settlement final on chain. The last line
    /// is one JSON object. Build with --release.
    ///
    /// Example:
    ///   cargo run --release --bin tranche -- bench exchange --traders 100 --orders 20000
    #[command(verbatim_doc_comment)]
    Exchange {
        /// Traders, half selling, half buying.
        #[arg(long, default_value_t = 100,
              value_parser = clap::value_parser!(u64).range(2..=exchange::TRADERS_MAX as u64))]
        traders: u64,
        /// Orders in all.
        #[arg(long, default_value_t = 20_000,
              value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
        orders: u64,
        /// First port of the benchmark's devnet.
        #[arg(long, default_value_t = 28700,
              value_parser = clap::value_parser!(u16).range(1024..=65_000))]
        base_port: u16,
    },
    /// The AML regulator's service: an exchange's reports reconciled
    /// against the chain, transfers per second, against reading and
    /// decoding the same transfers from a node alone.
    ///
    /// Starts a devnet in a temporary folder (its own ports, no services);
    /// the exchange binds 1,000 wallets of one KYC'd identity, a token is
    /// issued to them, and --transfers transfers between them go on chain.
    /// Measured: (a) reading every block from a node and decoding the
    /// transfers touching the exchange's wallets; (b) the regulator's
    /// service, started on a new SQLite database, following the chain from
    /// its first block, taking the exchange's signed reports of those
    /// transfers (about 20,000 a report) and reconciling every one, clean —
    /// from its start to the last reconciliation. The last line is one JSON
    /// object. Build with --release.
    ///
    /// Example:
    ///   cargo run --release --bin tranche -- bench reconcile --transfers 1000000
    #[command(verbatim_doc_comment)]
    Reconcile {
        /// Transfers put on chain between the exchange's wallets.
        #[arg(long, default_value_t = 1_000_000,
              value_parser = clap::value_parser!(u64).range(1..=reconcile::TRANSFERS_MAX))]
        transfers: u64,
        /// First port of the benchmark's devnet.
        #[arg(long, default_value_t = 28800,
              value_parser = clap::value_parser!(u16).range(1024..=65_000))]
        base_port: u16,
    },
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
        /// Investors holding the token (2 to 1000).
        #[arg(long, default_value_t = 1_000,
              value_parser = clap::value_parser!(u64).range(2..=tranche_types::ALLOCATIONS_MAX as u64))]
        holders: u64,
        /// Transfers measured.
        #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
        txs: u64,
        /// Transfers per block.
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        block: u64,
        /// Rounds; the best is kept.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=100))]
        rounds: u64,
    },
    /// The state as it grows: one block's apply, state root and commit at
    /// each state size, against the smallest size, with restart time and
    /// memory.
    ///
    /// Builds states of --holders holders (1,000 per token, so 1 to 1,000
    /// tokens), each holder with a wallet bound to a DID, KYC and
    /// jurisdiction claims and a balance; then executes --blocks blocks of
    /// --block holder transfers on a copy of the parent state each, computes
    /// the state root, and commits each to a chain store on disk. Reports
    /// medians per block (signature checks apart), the restart (the store
    /// reopened, its records and Merkle tree read back, in a fresh process
    /// as a node does on start) and that process's resident memory after
    /// it. The last line is one JSON object. Build with --release.
    ///
    /// Example:
    ///   cargo run --release --bin tranche -- bench state --holders 1000,100000
    #[command(verbatim_doc_comment)]
    State {
        /// State sizes in holders, comma-separated, multiples of 1000; the
        /// first is the baseline.
        #[arg(long, value_delimiter = ',', default_value = "1000,100000,1000000",
              value_parser = clap::value_parser!(u64).range(1_000..=10_000_000))]
        holders: Vec<u64>,
        /// Blocks measured at each size. The default is the blocks between
        /// two of a node's state checkpoints, so that each block's share of
        /// the checkpoint written after them is a node's.
        #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        blocks: u64,
        /// Transfers per block.
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=1_000))]
        block: u64,
    },
    /// The blocks half of `bench state`, run by it in a process of its own:
    /// builds a state of --holders holders, stores it at --store, executes
    /// and commits the blocks, and prints the medians as JSON.
    #[command(hide = true)]
    StateBlocks {
        /// The state's size in holders (a multiple of 1000).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1_000..=10_000_000))]
        holders: u64,
        /// Blocks measured.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        blocks: u64,
        /// Transfers per block.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000))]
        block: u64,
        /// Where to create the chain store.
        #[arg(long)]
        store: std::path::PathBuf,
    },
    /// The restart half of `bench state`, run by it in a process of its own:
    /// reads the state of the chain store at --store back as a node does on
    /// start, executes and commits the blocks on it, and prints the time,
    /// resident memory, medians and state root as JSON.
    #[command(hide = true)]
    StateRestart {
        /// Blocks measured.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        blocks: u64,
        /// Transfers per block.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000))]
        block: u64,
        /// The chain store (`chain.redb`) to read.
        #[arg(long)]
        store: std::path::PathBuf,
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
        #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000",
              value_parser = clap::value_parser!(u64).range(0..=10_000_000))]
        sizes: Vec<u64>,
        /// Operations measured per book size.
        #[arg(long, default_value_t = 300_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
        ops: u64,
        /// Rounds of throughput measurement; the best is kept.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=100))]
        rounds: u64,
        /// Seed of the workload.
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
}

/// `tranche bench chain` settings.
#[derive(Debug, Args)]
pub struct ChainArgs {
    /// Wallets sending transfers (each its own signer).
    #[arg(long, default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=chain::SENDERS_MAX as u64))]
    pub senders: u64,
    /// Transfers each sender signs (at most 60: the mempool holds 64 per signer).
    #[arg(long, default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=chain::PER_SENDER_MAX as u64))]
    pub per_sender: u64,
    /// Concurrent HTTP clients submitting.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub clients: u64,
    /// Transfers per submission (`POST /transactions/batch`); 1 submits
    /// each on its own (`POST /transactions`).
    #[arg(long, default_value_t = 50,
          value_parser = clap::value_parser!(u64).range(1..=tranche_api::BATCH_TXS_MAX as u64))]
    pub batch: u64,
    /// First port of the benchmark's devnet.
    #[arg(long, default_value_t = 28000,
          value_parser = clap::value_parser!(u16).range(1024..=65_000))]
    pub base_port: u16,
    /// Offer this many transfers a second, evenly paced, instead of as many
    /// as the clients can send: latency below saturation.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub rate: Option<u32>,
    /// Kill the last validator with -9 a quarter of the way through the
    /// run and again half way (plus 3 s), restarting it 3 s after each: the
    /// clients fail over to the other nodes within a second and send again
    /// what had not been finalized 2 s after they sent it. The result counts
    /// the kills, the transfers sent again and any finalized twice (always
    /// 0), and checks every validator ends on the same state root.
    #[arg(long)]
    pub kill: bool,
    /// Holders on chain before the transfers are measured: a multiple of
    /// 1,000, each with their own key, a wallet bound to their DID, a KYC
    /// claim and 1,000 units of one of holders / 1,000 tokens; put there
    /// through the chain (about two transactions a holder), so a million
    /// take several minutes.
    #[arg(long, default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=chain::PRELOAD_HOLDERS_MAX as u64))]
    pub holders: u64,
}

/// A count clap has bounded, as the library takes it.
fn count(n: u64) -> usize {
    usize::try_from(n).expect("clap bounds every count far below usize::MAX")
}

pub fn run(cmd: BenchCommand) -> Result<ExitCode> {
    match cmd {
        BenchCommand::Chain(a) => {
            let exe = std::env::current_exe().context("cannot find the tranche executable")?;
            chain::run(
                &exe,
                &chain::Options {
                    senders: count(a.senders),
                    per_sender: count(a.per_sender),
                    clients: count(a.clients),
                    batch: count(a.batch),
                    base_port: a.base_port,
                    rate: a.rate,
                    kill: a.kill,
                    holders: count(a.holders),
                },
            )?
        }
        BenchCommand::Offering {
            investors,
            clients,
            window_secs,
            base_port,
        } => {
            let exe = std::env::current_exe().context("cannot find the tranche executable")?;
            offering::run(
                &exe,
                &offering::Options {
                    investors: count(investors),
                    clients: count(clients),
                    base_port,
                    window_secs,
                },
            )?
        }
        BenchCommand::Custody {
            holders,
            clients,
            rate,
            base_port,
        } => {
            let exe = std::env::current_exe().context("cannot find the tranche executable")?;
            custody::run(
                &exe,
                &custody::Options {
                    holders: count(holders),
                    clients: count(clients),
                    rate,
                    base_port,
                },
            )?
        }
        BenchCommand::Reconcile {
            transfers,
            base_port,
        } => {
            let exe = std::env::current_exe().context("cannot find the tranche executable")?;
            reconcile::run(
                &exe,
                &reconcile::Options {
                    transfers,
                    base_port,
                },
            )?
        }
        BenchCommand::Exchange {
            traders,
            orders,
            base_port,
        } => {
            let exe = std::env::current_exe().context("cannot find the tranche executable")?;
            exchange::run(
                &exe,
                &exchange::Options {
                    traders: count(traders),
                    orders: count(orders),
                    base_port,
                },
            )?
        }
        BenchCommand::Ledger {
            holders,
            txs,
            block,
            rounds,
        } => ledger::run(&ledger::Options {
            holders: count(holders),
            txs: count(txs),
            block: count(block),
            rounds: count(rounds),
        })?,
        BenchCommand::State {
            holders,
            blocks,
            block,
        } => state::run(&state::Options {
            holders: holders.into_iter().map(count).collect(),
            blocks: count(blocks),
            block: count(block),
        })?,
        BenchCommand::StateBlocks {
            holders,
            blocks,
            block,
            store,
        } => state::blocks(
            count(holders),
            &state::Options {
                holders: vec![count(holders)],
                blocks: count(blocks),
                block: count(block),
            },
            &store,
        )?,
        BenchCommand::StateRestart {
            blocks,
            block,
            store,
        } => state::restart(
            &store,
            &state::Options {
                holders: Vec::new(),
                blocks: count(blocks),
                block: count(block),
            },
        )?,
        BenchCommand::Matching {
            sizes,
            ops,
            rounds,
            seed,
        } => matching::run(&matching::Options {
            sizes: sizes.into_iter().map(count).collect(),
            ops: count(ops),
            rounds: count(rounds),
            seed,
        })?,
    }
    Ok(ExitCode::SUCCESS)
}
