//! `tranche bench ledger`: the ledger's cost on top of signature verification.
#![allow(clippy::disallowed_methods)] // a benchmark reads the clock by nature

use super::bench::{per_second, ratio, SplitMix};
use anyhow::{bail, Result};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tranche_crypto::{os_rng, sign_transaction, verify_transactions_batch, Keypair};
use tranche_ledger::{BlockContext, Genesis, GenesisOrganisation, Ledger};
use tranche_types::*;

const CHAIN: &str = "tranche-bench";

fn key(tag: u32) -> Keypair {
    let mut seed = [0u8; 32];
    seed[..4].copy_from_slice(&tag.to_be_bytes());
    seed[4] = 0xbe;
    Keypair::from_seed(&seed)
}

fn parse<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    s.parse().expect("a fixed, valid id")
}

struct Net {
    ledger: Ledger,
    ctx: BlockContext,
}

impl Net {
    fn apply(&mut self, signer: &Keypair, payload: Payload) -> Result<()> {
        let tx = Transaction {
            chain_id: parse(CHAIN),
            signer: signer.public_key(),
            nonce: self.ledger.next_nonce(&signer.public_key()),
            valid_until: Timestamp(u64::MAX),
            payload,
        };
        let stx = sign_transaction(signer, tx)?;
        match self.ledger.apply(&self.ctx, &stx).outcome {
            Outcome::Applied => Ok(()),
            Outcome::Rejected(r) => bail!("setting up the benchmark failed: {r}"),
        }
    }
}

/// A network with one token of `holders * 1000` units, 1000 per holder, every
/// holder verified by KYC and jurisdiction claims.
fn setup(holders: usize) -> Result<(Net, Vec<Keypair>)> {
    let (tsp, issuer, kyc, appraiser) = (key(1), key(2), key(3), key(4));
    let org = |name: &str, k: &Keypair, role: Role| GenesisOrganisation {
        org: parse(name),
        key: k.public_key(),
        roles: vec![role],
        governor: true,
        stake: Stake::ZERO,
        bond: Stake::ZERO,
    };
    let genesis = Genesis {
        epoch_blocks: None,
        committee_max: None,
        chain_id: parse(CHAIN),
        organisations: vec![
            org("tsp", &tsp, Role::Tsp),
            org("issuer", &issuer, Role::Issuer),
            org("kyc", &kyc, Role::ClaimIssuer),
            org("appraiser", &appraiser, Role::Appraiser),
        ],
    };
    let mut net = Net {
        ledger: Ledger::genesis(&genesis)?,
        // 2026-01-01.
        ctx: BlockContext {
            height: 1,
            time: Timestamp(1_767_225_600_000),
        },
    };
    let people: Vec<Keypair> = (0..holders as u32).map(|i| key(1_000 + i)).collect();
    for p in &people {
        let binding = Ledger::sign_binding(&parse(CHAIN), p, p);
        let did = binding.did.clone();
        net.apply(&tsp, Payload::RegisterWallet(binding))?;
        for (topic, country) in [
            (ClaimTopic::KYC, None),
            (ClaimTopic::JURISDICTION, Some(CountryCode::new("KR")?)),
        ] {
            net.apply(
                &kyc,
                Payload::AddClaim(AddClaim {
                    did: did.clone(),
                    topic,
                    country,
                    digest: Hash([1; 32]),
                    expiry_date: parse("2099-12-31"),
                }),
            )?;
        }
    }
    let usd = Currency::known("USD")?;
    let units = holders as u128 * 1_000;
    let price = Money::new(units * 10_000, usd.clone());
    net.apply(
        &tsp,
        Payload::RegisterAsset(RegisterAsset {
            asset: parse("A-BENCH"),
            owner: Ledger::did_of_key(&tsp.public_key()),
            kind: AssetKind::Tangible,
            description: Hash([2; 32]),
            price: price.clone(),
            tolerance_bps: 100,
        }),
    )?;
    net.apply(
        &appraiser,
        Payload::RecordAppraisal(RecordAppraisal {
            asset: parse("A-BENCH"),
            value: price,
        }),
    )?;
    let allocations = AllocationsList::new(
        people
            .iter()
            .map(|p| Allocation {
                wallet: p.address(),
                amount: Units(1_000),
            })
            .collect(),
    )
    .map_err(|_| anyhow::anyhow!("at most {ALLOCATIONS_MAX} holders"))?;
    let rules = TokenRules {
        required_topics: BoundedVec(vec![ClaimTopic::KYC]),
        allowed_countries: BoundedVec(vec![CountryCode::new("KR")?]),
        denied_countries: BoundedVec(vec![CountryCode::new("KP")?]),
        max_holders: 0,
        max_balance_per_identity: Units(units),
        lockup_until: None,
    };
    net.apply(
        &tsp,
        Payload::RequestIssuance(RequestIssuance {
            request: parse("R-BENCH"),
            asset: parse("A-BENCH"),
            token: parse("BENCH"),
            unit_price: Money::new(10_000, usd),
            issue_date: parse("2026-01-01"),
            expiry_date: parse("2099-12-31"),
            amount: Units(units),
            issuer: parse("issuer"),
            allocations: allocations.clone(),
            rules,
        }),
    )?;
    net.apply(
        &issuer,
        Payload::ExecuteIssuance(ExecuteIssuance {
            request: parse("R-BENCH"),
            amount: Units(units),
            allocations,
        }),
    )?;
    Ok((net, people))
}

pub fn run(holders: usize, txs: usize, block: usize, rounds: usize) -> Result<ExitCode> {
    if !(2..=ALLOCATIONS_MAX).contains(&holders) || txs == 0 || block == 0 {
        super::usage!("--holders must be 2 to {ALLOCATIONS_MAX}, --txs and --block at least 1");
    }
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; use --release for meaningful numbers");
    }
    let (net, people) = setup(holders)?;
    // Sign the transfers up front: signing is the wallets' work, not the ledger's.
    let mut rng = SplitMix(42);
    let mut nonces = vec![0u64; holders];
    let mut signed = Vec::with_capacity(txs);
    for _ in 0..txs {
        let from = rng.below(holders as u64) as usize;
        let mut to = rng.below(holders as u64 - 1) as usize;
        if to >= from {
            to += 1;
        }
        nonces[from] += 1;
        let tx = Transaction {
            chain_id: parse(CHAIN),
            signer: people[from].public_key(),
            nonce: nonces[from],
            valid_until: Timestamp(u64::MAX),
            payload: Payload::Transfer(Transfer {
                token: parse("BENCH"),
                to: people[to].address(),
                amount: Units(1 + rng.below(5) as u128),
                reference: None,
            }),
        };
        signed.push(sign_transaction(&people[from], tx)?);
    }
    let blocks: Vec<&[SignedTransaction]> = signed.chunks(block).collect();
    let chain: ChainId = parse(CHAIN);
    let (mut full, mut verify_only) = (Duration::MAX, Duration::MAX);
    for _ in 0..rounds {
        let mut ledger = net.ledger.clone();
        let mut ctx = net.ctx;
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
    Ok(ExitCode::SUCCESS)
}
