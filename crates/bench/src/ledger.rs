//! `tranche bench ledger`: the ledger's cost on top of signature verification.
#![allow(clippy::disallowed_methods)] // a benchmark reads the clock by nature

use crate::{per_second, ratio, SplitMix};
use anyhow::{bail, Result};
use std::time::{Duration, Instant};
use tranche_crypto::{os_rng, verify_transactions_batch};
use tranche_testkit::world::{id, Person, World, CHAIN};
use tranche_types::*;

/// What `tranche bench ledger` measures.
#[derive(Debug, Clone)]
pub struct Options {
    /// Investors holding the token (2 to [`ALLOCATIONS_MAX`]).
    pub holders: usize,
    /// Transfers measured.
    pub txs: usize,
    /// Transfers per block.
    pub block: usize,
    /// Rounds; the best is kept.
    pub rounds: usize,
}

/// The testkit's world with one token of `holders * 1000` units, 1000 per
/// holder, every holder verified by KYC and jurisdiction claims, under
/// rules that check both and a per-identity limit on every transfer.
fn setup(holders: usize) -> Result<(World, Vec<Person>)> {
    let mut world = World::new();
    let people: Vec<Person> = (0..holders as u64).map(Person::numbered).collect();
    for p in &people {
        world.onboard(p, "KR");
    }
    let units = holders as u128 * 1_000;
    let rules = TokenRules {
        required_topics: BoundedVec(vec![ClaimTopic::KYC]),
        allowed_countries: BoundedVec(vec![CountryCode::new("KR")?]),
        denied_countries: BoundedVec(vec![CountryCode::new("KP")?]),
        max_holders: 0,
        max_balance_per_identity: Units(units),
        lockup_until: None,
        transfer_approval: false,
        category_limits: BoundedVec::default(),
        transfer_limit: None,
        max_ownership_bps: 0,
    };
    let investors: Vec<(&Person, u128)> = people.iter().map(|p| (p, 1_000)).collect();
    world.issue("BENCH", &investors, rules);
    Ok((world, people))
}

/// Runs the benchmark: a summary line, then one JSON object.
pub fn run(options: &Options) -> Result<()> {
    let Options {
        holders,
        txs,
        block,
        ..
    } = *options;
    if !(2..=ALLOCATIONS_MAX).contains(&holders) || txs == 0 || block == 0 {
        bail!("holders must be 2 to {ALLOCATIONS_MAX}, transfers and block size at least 1");
    }
    crate::warn_if_debug();
    let (world, people) = setup(holders)?;
    // Sign the transfers up front: signing is the wallets' work, not the ledger's.
    let mut rng = SplitMix(42);
    let mut senders = crate::Senders::new(&people, &world.ledger);
    let mut txs_signed = Vec::with_capacity(txs);
    for _ in 0..txs {
        let from = rng.below(holders as u64) as usize;
        let mut to = rng.below(holders as u64 - 1) as usize;
        if to >= from {
            to += 1;
        }
        txs_signed.push(senders.transfer(from, to, "BENCH", 1 + u128::from(rng.below(5))));
    }
    let blocks: Vec<&[SignedTransaction]> = txs_signed.chunks(block).collect();
    let chain: ChainId = id(CHAIN);
    let (mut full, mut verify_only) = (Duration::MAX, Duration::MAX);
    for _ in 0..options.rounds.max(1) {
        let mut ledger = world.ledger.clone();
        let mut ctx = world.ctx;
        let start = Instant::now();
        let mut applied = 0usize;
        for b in &blocks {
            verify_transactions_batch(*b, &chain, os_rng())?;
            ctx.height += 1;
            for stx in *b {
                if ledger.apply_verified(&ctx, stx).outcome == Outcome::Applied {
                    applied += 1;
                }
            }
        }
        let root = ledger.state_root();
        full = full.min(start.elapsed());
        if applied != txs {
            bail!("only {applied} of {txs} transfers applied; the workload is wrong");
        }
        std::hint::black_box(root);

        let start = Instant::now();
        for b in &blocks {
            verify_transactions_batch(*b, &chain, os_rng())?;
        }
        verify_only = verify_only.min(start.elapsed());
    }
    println!(
        "{txs} transfers among {holders} holders in blocks of {block}: applied {} tx/s, verified only {} tx/s",
        per_second(txs, full),
        per_second(txs, verify_only)
    );
    println!(
        "{{\"bench\":\"ledger\",\"tx_per_s\":{},\"verify_only_per_s\":{},\"ratio\":{:.2}}}",
        per_second(txs, full),
        per_second(txs, verify_only),
        ratio(full, verify_only).recip(),
    );
    Ok(())
}
