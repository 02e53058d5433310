//! `tranche bench state`: what one block costs as the state grows — apply,
//! state root and commit for blocks of holder transfers, with 1,000 holders
//! as the baseline, and what a restart and the memory cost at each size.
#![allow(clippy::disallowed_methods)] // a benchmark reads the clock by nature

use crate::SplitMix;
use anyhow::{bail, Context, Result};
use std::time::{Duration, Instant};
use tranche_block::apply_block;
use tranche_crypto::{os_rng, verify_transactions_batch};
use tranche_ledger::{Claim, Ledger};
use tranche_storage::ChainStore;
use tranche_testkit::key;
use tranche_testkit::world::{id, Person, World, CHAIN};
use tranche_types::*;

/// Holders of each token (the first token's are real people whose
/// transfers are measured; the others fill the state).
const PER_TOKEN: usize = 1_000;

/// What `tranche bench state` measures.
#[derive(Debug, Clone)]
pub struct Options {
    /// State sizes in holders (each a multiple of 1,000, at least 1,000);
    /// the first is the baseline.
    pub holders: Vec<usize>,
    /// Blocks measured at each size.
    pub blocks: usize,
    /// Transfers per block.
    pub block: usize,
}

/// A block's cost (medians), apart from its signatures.
#[derive(Debug, Clone, Copy)]
struct PerBlock {
    apply_ms: f64,
    root_ms: f64,
    commit_ms: f64,
    /// The state's checkpoint, written every so many blocks beside the
    /// commits, per block.
    checkpoint_ms: f64,
    signatures_ms: f64,
}

impl PerBlock {
    /// Reads the figures a half's JSON line holds.
    fn read(v: &serde_json::Value) -> Result<PerBlock> {
        Ok(PerBlock {
            apply_ms: number(v, "apply_ms")?,
            root_ms: number(v, "root_ms")?,
            commit_ms: number(v, "commit_ms")?,
            checkpoint_ms: number(v, "checkpoint_ms")?,
            signatures_ms: number(v, "signatures_ms")?,
        })
    }

    /// Apply, root, commit and its share of a checkpoint: the block's cost
    /// apart from its signatures.
    #[allow(clippy::float_arithmetic)] // milliseconds for a report
    fn block_ms(&self) -> f64 {
        self.apply_ms + self.root_ms + self.commit_ms + self.checkpoint_ms
    }
}

fn number(v: &serde_json::Value, k: &str) -> Result<f64> {
    v.get(k)
        .and_then(serde_json::Value::as_f64)
        .with_context(|| format!("no {k} in {v}"))
}

/// One size's figures.
#[derive(Debug, Clone, Copy)]
struct Figures {
    holders: usize,
    tokens: usize,
    /// Blocks on the state as built, its whole Merkle tree in memory.
    whole: PerBlock,
    /// Blocks after a restart, the tree read from the store as needed:
    /// what a running node pays.
    restarted: PerBlock,
    restart_ms: f64,
    /// Resident memory after the restart, and after its blocks.
    rss_mb: u64,
    rss_mb_after_blocks: u64,
    tree_nodes: usize,
    tree_nodes_in_memory: usize,
}

/// The process's resident memory, in MiB (Linux; 0 elsewhere).
fn rss_mb() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096 / (1 << 20))
}

#[allow(clippy::float_arithmetic)] // milliseconds for a report
fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

#[allow(clippy::float_arithmetic)] // a median for a report
fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// The state of `holders` holders across `holders / 1000` tokens: token
/// `T0` issued by the ledger to 1,000 onboarded people (returned, with
/// their keys), and the others filled in with the same records — a wallet
/// bound to a DID with KYC and jurisdiction claims, a balance of 1,000 —
/// as if each had been onboarded and issued to the same way.
fn build(holders: usize) -> Result<(Vec<u8>, Vec<Person>)> {
    let mut world = World::new();
    let people: Vec<Person> = (0..PER_TOKEN as u64).map(Person::numbered).collect();
    for p in &people {
        world.onboard(p, "KR");
    }
    let rules = TokenRules {
        required_topics: BoundedVec(vec![ClaimTopic::KYC]),
        allowed_countries: BoundedVec(vec![CountryCode::new("KR")?]),
        denied_countries: BoundedVec::default(),
        max_holders: 0,
        max_balance_per_identity: Units(0),
        lockup_until: None,
        transfer_approval: false,
        category_limits: BoundedVec::default(),
        transfer_limit: None,
        max_ownership_bps: 0,
    };
    let investors: Vec<(&Person, u128)> = people.iter().map(|p| (p, 1_000)).collect();
    world.issue("T0", &investors, rules);
    let mut state = world.ledger.state().clone();
    let token = state.tokens[&id::<TokenId>("T0")].clone();
    let kyc: OrgId = id("kyc-co");
    let claim = |country: Option<CountryCode>| Claim {
        country,
        digest: Hash([7; 32]),
        expiry_date: "2026-12-31".parse().expect("a date"),
        revoked: false,
    };
    let kr = Some(CountryCode::new("KR")?);
    for n in PER_TOKEN..holders {
        let token_id: TokenId = format!("T{}", n / PER_TOKEN).parse()?;
        if n % PER_TOKEN == 0 {
            state.tokens.insert(token_id.clone(), token.clone());
        }
        let mut address = [0u8; 20];
        address[..8].copy_from_slice(&(n as u64).to_be_bytes());
        address[8] = 0xF1;
        let wallet = WalletAddress(address);
        let did = Did::parse(&format!("did:key:zfill{n}"))?;
        state.wallets.insert(wallet, did.clone());
        state.did_wallets.insert((did.clone(), wallet), ());
        state
            .claims
            .insert((did.clone(), ClaimTopic::KYC, kyc.clone()), claim(None));
        state.claims.insert(
            (did.clone(), ClaimTopic::JURISDICTION, kyc.clone()),
            claim(kr),
        );
        state.identity_holdings.insert((token_id.clone(), did), 1);
        state.balances.insert((token_id, wallet), Units(1_000));
    }
    Ok((state.to_bytes(), people))
}

/// Measures one size, each half in a process of its own so that neither
/// counts the other's memory: the blocks (`bench state-blocks`), which
/// leave their store behind, then the restart from that store (`bench
/// state-restart`). Resident memory after the restart is what a node
/// holding this state needs; the building process's own would also count
/// the pages its allocator kept from building the state.
fn measure(holders: usize, options: &Options) -> Result<Figures> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("chain.redb");
    let blocks = in_a_process(
        &[
            "state-blocks".to_string(),
            "--holders".into(),
            holders.to_string(),
            "--blocks".into(),
            options.blocks.to_string(),
            "--block".into(),
            options.block.to_string(),
            "--store".into(),
            path.display().to_string(),
        ],
        "the blocks' process",
    )?;
    let restarted = in_a_process(
        &[
            "state-restart".to_string(),
            "--blocks".into(),
            options.blocks.to_string(),
            "--block".into(),
            options.block.to_string(),
            "--store".into(),
            path.display().to_string(),
        ],
        "the restart's process",
    )?;
    if blocks.get("root") != restarted.get("root") {
        bail!("the restarted state's root is not the last block's: {blocks} {restarted}");
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // counts
    Ok(Figures {
        holders,
        tokens: holders / PER_TOKEN,
        whole: PerBlock::read(&blocks)?,
        restarted: PerBlock::read(&restarted)?,
        restart_ms: number(&restarted, "restart_ms")?,
        rss_mb: number(&restarted, "rss_mb")? as u64,
        rss_mb_after_blocks: number(&restarted, "rss_mb_after_blocks")? as u64,
        tree_nodes: number(&blocks, "tree_nodes")? as usize,
        tree_nodes_in_memory: number(&restarted, "tree_nodes_in_memory")? as usize,
    })
}

/// Runs `tranche bench ARGS` and reads the one JSON line it prints.
fn in_a_process(args: &[String], what: &str) -> Result<serde_json::Value> {
    let exe = std::env::current_exe().context("finding this program")?;
    let out = std::process::Command::new(exe)
        .arg("bench")
        .args(args)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("starting {what}"))?;
    if !out.status.success() {
        bail!("{what} failed: {}", out.status);
    }
    let line = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(line.trim()).with_context(|| format!("{what} said {line:?}"))
}

/// `tranche bench state-blocks`: builds a state of `holders` holders,
/// stores it at `store`, executes and commits `options`' blocks on it with
/// its whole Merkle tree in memory, and prints one JSON line with the
/// medians per block, the tree's size and the last state root.
pub fn blocks(holders: usize, options: &Options, store: &std::path::Path) -> Result<()> {
    check(&Options {
        holders: vec![holders],
        ..options.clone()
    })?;
    eprintln!("building a state of {holders} holders");
    let (snapshot, people) = build(holders)?;
    let chain: ChainId = id(CHAIN);
    let ledger = Ledger::restore(chain.clone(), &snapshot)?;
    drop(snapshot);
    eprintln!("building its Merkle tree and storing it");
    let parent_root = ledger.state_root();
    let tree_nodes = ledger.state().tree_nodes();
    let store = ChainStore::open(store)?;
    // The state as of block 1, written whole: what the measured blocks build on.
    let first = Block::new(
        chain.clone(),
        1,
        Hash::ZERO,
        Timestamp(tranche_testkit::world::START_MS),
        key(1).public_key(),
        parent_root,
        Vec::new(),
    );
    store.commit(&first, &[], &[], &ledger, None)?;
    // Written now: no block gives this state, so a restart must find it.
    store.flush()?;
    let measured = measure_blocks(&store, ledger, &first, &people, options, 7)?;
    println!(
        "{}",
        serde_json::json!({
            "apply_ms": measured.apply_ms,
            "root_ms": measured.root_ms,
            "commit_ms": measured.commit_ms,
            "checkpoint_ms": measured.checkpoint_ms,
            "signatures_ms": measured.signatures_ms,
            "tree_nodes": tree_nodes,
            "root": measured.ledger.state_root().to_hex(),
        })
    );
    Ok(())
}

/// What [`measure_blocks`] measured, per block (medians), and the ledger
/// after the blocks.
struct Measured {
    apply_ms: f64,
    root_ms: f64,
    commit_ms: f64,
    checkpoint_ms: f64,
    signatures_ms: f64,
    ledger: Ledger,
}

/// Executes and commits `options.blocks` blocks of `options.block`
/// transfers among `people` (the first token's holders, in a random
/// order from `seed`) on `ledger`, the state after `parent`, then writes
/// the state's checkpoint of them.
fn measure_blocks(
    store: &ChainStore,
    mut ledger: Ledger,
    parent: &Block,
    people: &[Person],
    options: &Options,
    seed: u64,
) -> Result<Measured> {
    let chain = ledger.chain_id().clone();
    let mut rng = SplitMix(seed);
    let mut senders = crate::Senders::new(people, &ledger);
    let (mut apply, mut root, mut commit, mut signatures) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let proposer = key(1).public_key();
    let mut parent_root = ledger.state_root();
    let mut time = parent.header.time;
    let first = parent.header.height + 1;
    let mut parent = parent.hash();
    for height in first..first + options.blocks as u64 {
        let mut txs = Vec::with_capacity(options.block);
        for _ in 0..options.block {
            let from = rng.below(PER_TOKEN as u64) as usize;
            let to = (from + 1 + rng.below(PER_TOKEN as u64 - 1) as usize) % PER_TOKEN;
            txs.push(senders.transfer(from, to, "T0", 1));
        }
        time = time.plus_ms(1_000);
        let block = Block::new(
            chain.clone(),
            height,
            parent,
            time,
            proposer,
            parent_root,
            txs,
        );

        let started = Instant::now();
        verify_transactions_batch(&block.txs, &chain, os_rng())?;
        signatures.push(ms(started.elapsed()));

        // A block is executed on a copy of its parent's state, as a
        // validator verifying a proposal does.
        let started = Instant::now();
        let mut next = ledger.clone();
        let (receipts, events) = apply_block(&mut next, &block);
        apply.push(ms(started.elapsed()));
        let started = Instant::now();
        let state_root = next.state_root();
        root.push(ms(started.elapsed()));
        if receipts.iter().any(|r| r.outcome != Outcome::Applied) {
            bail!("a measured transfer was rejected; the workload is wrong");
        }

        let transfers: Vec<TransferRecord> = events
            .iter()
            .filter_map(|e| match e {
                tranche_ledger::LedgerEvent::Transfer(t) => Some(t.clone()),
                _ => None,
            })
            .collect();
        let started = Instant::now();
        store
            .commit(&block, &receipts, &transfers, &next, None)
            .context("committing a measured block")?;
        commit.push(ms(started.elapsed()));
        parent = block.hash();
        parent_root = state_root;
        ledger = next;
    }
    // The checkpoint of the measured blocks' changes, which a node writes
    // beside its commits every so many blocks, shared out among them.
    let started = Instant::now();
    store.flush().context("writing the state's checkpoint")?;
    #[allow(clippy::float_arithmetic, clippy::cast_precision_loss)] // a report
    let checkpoint_ms = ms(started.elapsed()) / options.blocks as f64;
    Ok(Measured {
        apply_ms: median(apply),
        root_ms: median(root),
        commit_ms: median(commit),
        checkpoint_ms,
        signatures_ms: median(signatures),
        ledger,
    })
}

/// `tranche bench state-restart`: opens the chain store at `store`, reads
/// its state back as a node does on start (its Merkle tree's nodes read
/// from the store as blocks need them), then executes and commits
/// `options`' blocks on it as a running node does; prints one JSON line
/// with the time the restart took, this process's resident memory after
/// it and after the blocks, the medians per block, and the state roots.
pub fn restart(store: &std::path::Path, options: &Options) -> Result<()> {
    let started = Instant::now();
    let opened = ChainStore::open(store)?;
    let (height, ledger) = opened
        .load_ledger(&World::new().ledger)?
        .context("the store holds no finalized block")?;
    let took = started.elapsed();
    let rss_restarted = rss_mb();
    let restarted_root = ledger.state_root();
    let parent = opened
        .block(height)?
        .context("the store lacks its last block")?;
    let people: Vec<Person> = (0..PER_TOKEN as u64).map(Person::numbered).collect();
    let measured = measure_blocks(&opened, ledger, &parent, &people, options, 11)?;
    println!(
        "{}",
        serde_json::json!({
            "restart_ms": ms(took),
            "rss_mb": rss_restarted,
            "rss_mb_after_blocks": rss_mb(),
            "root": restarted_root.to_hex(),
            "apply_ms": measured.apply_ms,
            "root_ms": measured.root_ms,
            "commit_ms": measured.commit_ms,
            "checkpoint_ms": measured.checkpoint_ms,
            "signatures_ms": measured.signatures_ms,
            "tree_nodes_in_memory": measured.ledger.state().tree_nodes(),
        })
    );
    Ok(())
}

/// Refuses sizes the state cannot be built at.
fn check(options: &Options) -> Result<()> {
    if options.holders.is_empty()
        || options
            .holders
            .iter()
            .any(|h| *h < PER_TOKEN || h % PER_TOKEN != 0)
    {
        bail!("state sizes must be multiples of {PER_TOKEN} holders, at least {PER_TOKEN}");
    }
    if options.blocks == 0 || options.block == 0 || options.block > PER_TOKEN {
        bail!("at least one block of 1 to {PER_TOKEN} transfers");
    }
    Ok(())
}

/// Runs the benchmark: a line per size, then one JSON object.
pub fn run(options: &Options) -> Result<()> {
    check(options)?;
    crate::warn_if_debug();
    let mut all: Vec<Figures> = Vec::new();
    for &holders in &options.holders {
        let f = measure(holders, options)?;
        let (w, r) = (f.whole, f.restarted);
        println!(
            "{:>9} holders, {:>4} tokens: block {:>7.2} ms (apply {:.2}, root {:.2}, commit {:.2}, checkpoint {:.2}) after a restart, {:.2} ms with the whole tree in memory; signatures {:.2} ms; restart {:.0} ms; {} MiB resident after it, {} after the blocks; {} tree nodes, {} in memory after the blocks",
            f.holders,
            f.tokens,
            r.block_ms(),
            r.apply_ms,
            r.root_ms,
            r.commit_ms,
            r.checkpoint_ms,
            w.block_ms(),
            r.signatures_ms,
            f.restart_ms,
            f.rss_mb,
            f.rss_mb_after_blocks,
            f.tree_nodes,
            f.tree_nodes_in_memory,
        );
        all.push(f);
    }
    let small = all[0];
    let large = *all
        .iter()
        .max_by_key(|f| f.holders)
        .expect("at least one size");
    #[allow(clippy::float_arithmetic)] // a ratio for the report
    let ratio = large.restarted.block_ms() / small.restarted.block_ms().max(1e-9);
    println!(
        "{{\"bench\":\"state\",\"holders_max\":{},\"block_ms_small\":{:.2},\"block_ms_large\":{:.2},\"ratio\":{:.2},\"rss_mb_large\":{},\"restart_ms_large\":{:.0}}}",
        large.holders,
        small.restarted.block_ms(),
        large.restarted.block_ms(),
        ratio,
        large.rss_mb.max(large.rss_mb_after_blocks),
        large.restart_ms,
    );
    Ok(())
}
