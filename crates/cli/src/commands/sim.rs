//! `tranche sim`: whole networks of validators in the deterministic simulator.

use anyhow::{bail, Result};
use clap::Args;
use std::process::ExitCode;
use tranche_consensus::sim::{common_prefix_agrees, link, run};

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
}

pub fn run_sim(args: SimArgs) -> Result<ExitCode> {
    if !(1..=32).contains(&args.validators) {
        bail!("--validators must be 1 to 32");
    }
    if args.down * 3 >= args.validators {
        bail!(
            "--down {} of {} validators leaves no BFT quorum: at most {} may be down",
            args.down,
            args.validators,
            (args.validators - 1) / 3
        );
    }
    if args.txs == 0 || args.txs > 10_000 {
        bail!("--txs must be 1 to 10000");
    }
    let seeds: Vec<u64> = match args.seed {
        Some(s) => vec![s],
        None => (args.first_seed..args.first_seed.saturating_add(args.seeds)).collect(),
    };
    let (mut passed, mut failed) = (0u64, 0u64);
    for seed in seeds {
        let l = link(args.latency_ms, args.jitter_ms);
        let (n, down, txs) = (args.validators, args.down, args.txs);
        let outcome = std::panic::catch_unwind(move || {
            let chains = run(seed, n, down, txs, l);
            common_prefix_agrees(seed, &chains)
        });
        match outcome {
            Ok(blocks) => {
                passed += 1;
                println!(
                    "seed {seed}: {} validators agree on every block and state root through height {blocks}",
                    n - down
                );
            }
            Err(_) => {
                failed += 1;
                println!("seed {seed}: FAILED; replay with `tranche sim --seed {seed} --validators {n} --down {down} --txs {txs} --latency-ms {} --jitter-ms {}`", args.latency_ms, args.jitter_ms);
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
