//! Simulations at scale: every fault kind over a hundred seeds each with 4
//! and with 7 validators (a thousand runs in all), links losing up to 10 %
//! of messages with up to 60 ms of jitter. Each run must keep every honest
//! validator on the same blocks and state roots and finish its work (the
//! checks inside `run_scenario`); a failing seed is printed for replay with
//! `tranche sim`. Each test writes its count and time to the log.

use std::io::Write as _;
use std::time::Instant;
use tranche_sim::{common_prefix_agrees, link, run_scenario, BadBlock, Fault, Scenario};

/// Seeds per fault kind and committee size.
const SEEDS: u64 = 100;

fn sweep(name: &str, first_seed: u64, fault: Fault) {
    sweep_seeds(name, first_seed, SEEDS, fault);
}

fn sweep_seeds(name: &str, first_seed: u64, seeds: u64, fault: Fault) {
    // Each committee size on its own thread: the crash runs are the longest.
    std::thread::scope(|s| {
        for validators in [4, 7] {
            s.spawn(move || sweep_one(name, first_seed, seeds, validators, fault));
        }
    });
}

fn sweep_one(name: &str, first_seed: u64, seeds: u64, validators: usize, fault: Fault) {
    #[allow(clippy::disallowed_methods)] // a test measuring itself for the log
    let started = Instant::now();
    let mut runs = 0;
    {
        for seed in first_seed..first_seed + seeds {
            // Loss from 0 to 10 %, jitter from 5 to 60 ms, spread over the seeds.
            let loss = (seed % 11) as u8;
            let jitter = 5 + (seed * 7) % 56;
            let scenario = Scenario {
                seed,
                validators,
                down: 0,
                txs: 10,
                link: link(30, jitter, loss),
                fault,
            };
            let replay = format!(
                "tranche sim --seed {seed} --validators {validators} --latency-ms 30 \
                 --jitter-ms {jitter} --loss-percent {loss} --fault {name}"
            );
            let outcome = std::panic::catch_unwind(|| {
                let chains = run_scenario(&scenario);
                common_prefix_agrees(seed, &chains)
            });
            assert!(outcome.is_ok(), "failed; replay with `{replay}`");
            runs += 1;
        }
    }
    // Straight to the log, past the test harness's capture of print!.
    let _ = writeln!(
        std::io::stderr(),
        "simulated {runs} seeds of fault `{name}` ({validators} validators, loss 0-10 %, jitter 5-60 ms) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn no_fault_beyond_loss_and_jitter() {
    sweep("none", 10_000, Fault::None);
}

#[test]
fn partitions_that_heal() {
    sweep(
        "partition",
        20_000,
        Fault::Partition {
            at: 3,
            heal_ms: 15_000,
        },
    );
}

#[test]
fn a_validator_crashed_and_restarted() {
    sweep(
        "crash",
        30_000,
        Fault::Crash {
            at: 3,
            down_ms: 20_000,
        },
    );
}

#[test]
fn an_equivocator() {
    sweep("equivocate", 40_000, Fault::Equivocate);
}

#[test]
fn a_validator_joining_and_another_leaving() {
    sweep("join", 50_000, Fault::Join { at: 4 });
}

/// The other Byzantine behaviours and clocks, fewer seeds each.
#[test]
fn byzantine_leaders_floods_twins_and_clocks() {
    for (name, first_seed, fault) in [
        (
            "bad-state-root",
            60_000,
            Fault::BadBlocks(BadBlock::StateRoot),
        ),
        (
            "bad-signature",
            61_000,
            Fault::BadBlocks(BadBlock::Signature),
        ),
        (
            "from-the-future",
            62_000,
            Fault::BadBlocks(BadBlock::FromTheFuture),
        ),
        ("two-faced", 63_000, Fault::TwoFaced),
        ("flood", 64_000, Fault::SilentThenFlood { silent_ms: 5_000 }),
        ("twins", 65_000, Fault::Twins),
        ("clock-ahead", 66_000, Fault::ClockSkew { ms: 5_000 }),
        ("clock-behind", 67_000, Fault::ClockSkew { ms: -5_000 }),
    ] {
        sweep_seeds(name, first_seed, 10, fault);
    }
}
