//! `tranche sim`: whole networks of validators in the deterministic simulator.

use anyhow::{bail, Result};
use clap::{Args, ValueEnum as _};
use std::process::ExitCode;
use tranche_sim::{common_prefix_agrees, link, run_scenario, BadBlock, Fault, Scenario};

/// The simulator's settings (see `tranche sim --help`).
#[derive(Debug, Args)]
pub struct SimArgs {
    /// How many seeds to run, from --first-seed on.
    #[arg(long, default_value_t = 10)]
    seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 1)]
    first_seed: u64,
    /// Replay only this seed.
    #[arg(long, conflicts_with_all = ["seeds", "first_seed"])]
    seed: Option<u64>,
    /// Validators in the network.
    #[arg(long, default_value_t = 4)]
    validators: usize,
    /// Validators down from the start (at most a third, rounded down, of the rest).
    #[arg(long, default_value_t = 0)]
    down: usize,
    /// Transactions each run must finalize.
    #[arg(long, default_value_t = 10)]
    txs: u64,
    /// Link latency in milliseconds.
    #[arg(long, default_value_t = 30)]
    latency_ms: u64,
    /// Link jitter in milliseconds.
    #[arg(long, default_value_t = 20)]
    jitter_ms: u64,
    /// Share of messages each link loses, in percent (0 to 50).
    #[arg(long, default_value_t = 0)]
    loss_percent: u8,
    /// What goes wrong: `none`; `partition` (after 3 blocks the validators
    /// split into two halves for 15 s, then heal); `crash` (after 3 blocks
    /// the last validator is killed, and restarted 20 s later from its store);
    /// `equivocate` (the last validator signs two conflicting votes for every
    /// vote it sees; the others must record it on chain and slash its bond);
    /// `join` (the committee has a seat fewer than there are validators;
    /// after 4 blocks the last one bonds, joins at the next epoch, and the
    /// next to last leaves; both keep up). Byzantine leaders (the last
    /// validator; none of its invalid blocks may become final):
    /// `bad-state-root`, `bad-signature` (a transaction whose signature does
    /// not verify), `from-the-future` (blocks timed an hour ahead);
    /// `two-faced` (it proposes two blocks and votes for each to half the
    /// others); `flood` (silent for 5 s, then it sends back every message it
    /// received, and echoes all it receives); `twins` (two processes share
    /// its key). `clock-ahead` and `clock-behind`: the last validator's clock
    /// is 5 s off; it must keep the same chain. Epochs are 5 blocks long.
    #[arg(long, value_enum, default_value_t = FaultArg::None)]
    fault: FaultArg,
}

/// The faults `tranche sim` can inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FaultArg {
    /// Only latency, jitter and loss.
    None,
    /// A partition that heals.
    Partition,
    /// A validator crashed and restarted.
    Crash,
    /// A validator signing conflicting votes.
    Equivocate,
    /// A validator joining the committee and another leaving it.
    Join,
    /// A leader whose blocks claim a wrong parent state.
    BadStateRoot,
    /// A leader whose blocks carry a badly signed transaction.
    BadSignature,
    /// A leader whose blocks are timed an hour ahead.
    FromTheFuture,
    /// A leader proposing two blocks at once.
    TwoFaced,
    /// A validator silent, then flooding old messages.
    Flood,
    /// Two processes with one key.
    Twins,
    /// A validator whose clock is 5 s ahead.
    ClockAhead,
    /// A validator whose clock is 5 s behind.
    ClockBehind,
}

impl FaultArg {
    fn fault(self) -> Fault {
        match self {
            FaultArg::None => Fault::None,
            FaultArg::Partition => Fault::Partition {
                at: 3,
                heal_ms: 15_000,
            },
            FaultArg::Crash => Fault::Crash {
                at: 3,
                down_ms: 20_000,
            },
            FaultArg::Equivocate => Fault::Equivocate,
            FaultArg::Join => Fault::Join { at: 4 },
            FaultArg::BadStateRoot => Fault::BadBlocks(BadBlock::StateRoot),
            FaultArg::BadSignature => Fault::BadBlocks(BadBlock::Signature),
            FaultArg::FromTheFuture => Fault::BadBlocks(BadBlock::FromTheFuture),
            FaultArg::TwoFaced => Fault::TwoFaced,
            FaultArg::Flood => Fault::SilentThenFlood { silent_ms: 5_000 },
            FaultArg::Twins => Fault::Twins,
            FaultArg::ClockAhead => Fault::ClockSkew { ms: 5_000 },
            FaultArg::ClockBehind => Fault::ClockSkew { ms: -5_000 },
        }
    }
}

pub fn run_sim(args: SimArgs) -> Result<ExitCode> {
    if !(1..=32).contains(&args.validators) {
        super::usage!("--validators must be 1 to 32");
    }
    if args.down * 3 >= args.validators {
        bail!(
            "--down {} of {} validators leaves no BFT quorum: at most {} may be down",
            args.down,
            args.validators,
            (args.validators - 1) / 3
        );
    }
    if args.loss_percent > 50 {
        super::usage!("--loss-percent must be 0 to 50");
    }
    let fault = args.fault.fault();
    let faulty = !matches!(fault, Fault::None | Fault::Partition { .. });
    if faulty && (args.down + 1) * 3 >= args.validators {
        super::usage!(
            "--fault {} takes one more validator out: with --down {} that leaves no quorum of {}",
            args.fault
                .to_possible_value()
                .map(|v| v.get_name().to_string())
                .unwrap_or_default(),
            args.down,
            args.validators
        );
    }
    if args.txs == 0 || args.txs > 10_000 {
        super::usage!("--txs must be 1 to 10000");
    }
    let seeds: Vec<u64> = match args.seed {
        Some(s) => vec![s],
        None => (args.first_seed..args.first_seed.saturating_add(args.seeds)).collect(),
    };
    let (mut passed, mut failed) = (0u64, 0u64);
    #[allow(clippy::disallowed_methods)] // the CLI is the edge: it may read the clock
    let started = std::time::Instant::now();
    for seed in seeds {
        let l = link(args.latency_ms, args.jitter_ms, args.loss_percent);
        let (n, down, txs) = (args.validators, args.down, args.txs);
        let scenario = Scenario {
            seed,
            validators: n,
            down,
            txs,
            link: l,
            fault,
        };
        let outcome = std::panic::catch_unwind(move || {
            let chains = run_scenario(&scenario);
            common_prefix_agrees(seed, &chains)
        });
        match outcome {
            Ok(blocks) => {
                passed += 1;
                println!(
                    "seed {seed}: {} validators agree on every block and state root through height {blocks}",
                    n - down - usize::from(fault.byzantine())
                );
            }
            Err(_) => {
                failed += 1;
                println!("seed {seed}: FAILED; replay with `tranche sim --seed {seed} --validators {n} --down {down} --txs {txs} --latency-ms {} --jitter-ms {} --loss-percent {} --fault {}`", args.latency_ms, args.jitter_ms, args.loss_percent, args.fault.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default());
            }
        }
    }
    println!(
        "{passed} passed, {failed} failed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
