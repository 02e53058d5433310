//! `tranche bench chain`: finalized transfers per second and latency on a
//! local network of four validator processes, driven through the node API;
//! with `--kill`, while one validator is killed with -9 and restarted twice.
#![allow(clippy::disallowed_methods)] // a benchmark measures wall time

use anyhow::{anyhow, bail, Result};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Mutex};
#[allow(clippy::disallowed_types)] // a benchmark measures wall time
use std::time::{Duration, Instant};
use tranche_api::client::BlockingNodeClient;
use tranche_crypto::rand_core::OsRng;
use tranche_crypto::{sign_transaction, Keypair};
use tranche_devnet::Devnet;
use tranche_ledger::Ledger;
use tranche_testkit::world::{
    appraisal, claim_until, execution, issuance_request, record_ownership, register_asset, usd,
};
use tranche_types::*;

/// The most senders: one issuance allocates to at most this many wallets.
pub const SENDERS_MAX: usize = ALLOCATIONS_MAX;
/// The most transfers a sender signs: the mempool holds 64 per signer.
pub const PER_SENDER_MAX: usize = 60;
/// The most holders put on chain before a run.
pub const PRELOAD_HOLDERS_MAX: usize = 2_000_000;

/// What `tranche bench chain` measures.
#[derive(Debug, Clone)]
pub struct Options {
    /// Wallets sending transfers (each its own signer), 1 to [`SENDERS_MAX`].
    pub senders: usize,
    /// Transfers each sender signs, 1 to [`PER_SENDER_MAX`].
    pub per_sender: usize,
    /// Concurrent HTTP clients submitting.
    pub clients: usize,
    /// Transfers per submission (`POST /transactions/batch`); 1 submits
    /// each on its own (`POST /transactions`). At most `BATCH_TXS_MAX`.
    pub batch: usize,
    /// First port of the benchmark's devnet.
    pub base_port: u16,
    /// Offer this many transfers a second, evenly paced, instead of as many
    /// as the clients can send: latency below saturation.
    pub rate: Option<u32>,
    /// Kill the last validator with -9 twice during the run, restarting it
    /// each time: clients fail over to the other nodes and send again what
    /// was not finalized.
    pub kill: bool,
    /// Holders put on chain before the run (a multiple of 1,000, at most
    /// [`PRELOAD_HOLDERS_MAX`]), so that the transfers run against a state
    /// of that size.
    pub holders: usize,
}

/// [`crate::send_in_order`] through a blocking client.
fn setup(
    client: &BlockingNodeClient,
    chain: &ChainId,
    key: &Keypair,
    payloads: Vec<Payload>,
) -> Result<()> {
    client.run(|c| crate::send_in_order(c, chain, key, payloads))
}

/// Runs the benchmark on a devnet of its own in a temporary folder, started
/// with `tranche_exe`, and prints one JSON object.
pub fn run(tranche_exe: &Path, options: &Options) -> Result<()> {
    if options.senders == 0 || options.senders > SENDERS_MAX {
        bail!("senders must be 1 to {SENDERS_MAX}");
    }
    if options.per_sender == 0 || options.per_sender > PER_SENDER_MAX {
        bail!("transfers per sender must be 1 to {PER_SENDER_MAX}");
    }
    if options.batch == 0 || options.batch > tranche_api::BATCH_TXS_MAX {
        bail!("the batch must be 1 to {}", tranche_api::BATCH_TXS_MAX);
    }
    if options.rate == Some(0) {
        bail!("the rate must be at least 1 transfer a second");
    }
    if !options.holders.is_multiple_of(crate::preload::PER_TOKEN)
        || options.holders > PRELOAD_HOLDERS_MAX
    {
        bail!(
            "holders must be a multiple of {} up to {PRELOAD_HOLDERS_MAX}",
            crate::preload::PER_TOKEN
        );
    }
    // The benchmark signs as the organisations itself: no services.
    let (_tmp, mut devnet) = crate::devnet(tranche_exe, options.base_port, false)?;
    let result = measure(options, &mut devnet);
    // Stopped before the folder goes, and so that the ports are free for
    // the next run.
    devnet.stop();
    println!("{}", result?);
    Ok(())
}

/// Onboards `args.senders` wallets of one KYC'd investor and a receiver,
/// issues them a token, and signs every transfer to be measured: nonce
/// order within a signer, signers interleaved.
fn prepare(
    args: &Options,
    devnet: &Devnet,
    client: &BlockingNodeClient,
    chain: &ChainId,
) -> Result<Vec<SignedTransaction>> {
    let tsp = devnet.open_key("devnet-tsp")?;
    let kyc = devnet.open_key("devnet-kyc")?;
    let appraiser = devnet.open_key("devnet-appraiser")?;
    let registry = devnet.open_key("devnet-registry")?;
    let issuer = devnet.open_key("devnet-issuer")?;
    let senders: Vec<Keypair> = (0..args.senders)
        .map(|_| Keypair::generate(&mut OsRng))
        .collect();
    let receiver_key = Keypair::generate(&mut OsRng);
    let receiver = receiver_key.address();
    // One investor holds every wallet: each binding carries its consent.
    let investor = Keypair::generate(&mut OsRng);
    let did = Ledger::did_of_key(&investor.public_key());
    eprintln!(
        "setting up: {} wallets, one KYC'd identity, one token",
        args.senders + 1
    );
    let mut wallets: Vec<Payload> = senders
        .iter()
        .chain([&receiver_key])
        .map(|k| Payload::RegisterWallet(Ledger::sign_binding(chain, k, &investor)))
        .collect();
    // The asset is priced so that its price over the unit price (100 USD)
    // is exactly the number of tokens issued (F5-2).
    let each = 1_000u128;
    let amount = each * senders.len() as u128;
    let price = usd(amount * 10_000);
    let token: TokenId = "T-BENCH".parse()?;
    setup(
        client,
        chain,
        &registry,
        vec![record_ownership("A-BENCH", did.clone())],
    )?;
    wallets.push(register_asset("A-BENCH", did.clone(), price.clone()));
    setup(client, chain, &tsp, wallets)?;
    let kyc_until = "2099-12-31".parse()?;
    let kyc_claim = claim_until(&did, ClaimTopic::KYC, None, kyc_until);
    setup(client, chain, &kyc, vec![kyc_claim])?;
    setup(client, chain, &appraiser, vec![appraisal("A-BENCH", price)])?;
    let allocations: Vec<(WalletAddress, u128)> =
        senders.iter().map(|k| (k.address(), each)).collect();
    let request = issuance_request(
        "R-BENCH",
        "A-BENCH",
        token.as_str(),
        "devnet-issuer",
        &allocations,
        amount,
    );
    let request_id = request.request.clone();
    let execute = execution(&request);
    setup(client, chain, &tsp, vec![Payload::RequestIssuance(request)])?;
    setup(client, chain, &issuer, vec![execute])?;
    let issued = client
        .run(|c| c.issuance(request_id.as_str()))?
        .and_then(|at| at.data.check)
        .and_then(|c| c.issued);
    if issued != Some(Units(amount)) {
        bail!("the benchmark token was not issued: {issued:?} of {amount}");
    }
    if args.holders > 0 {
        client.run(|c| crate::preload::holders(devnet, c, chain, args.holders, &did))?;
    }

    // Sign everything before the clock starts.
    let valid_until = crate::wall_clock().plus_ms(600_000);
    let mut txs = Vec::new();
    for k in &senders {
        for i in 0..args.per_sender {
            let tx = Transaction {
                chain_id: chain.clone(),
                signer: k.public_key(),
                nonce: 1 + i as u64,
                valid_until,
                payload: Payload::Transfer(Transfer {
                    token: token.clone(),
                    to: receiver,
                    amount: Units(1),
                    reference: None,
                }),
            };
            txs.push(sign_transaction(k, tx)?);
        }
    }
    // Nonce order within a signer; signers interleaved.
    txs.sort_by_key(|t| (t.tx.nonce, t.tx.signer));
    Ok(txs)
}

/// When the validator to crash is killed and restarted, from the start of
/// the run, for a run expected to last `expected`: at a quarter of it, and
/// at half of it plus the first outage, each time back after [`DOWN`].
fn kill_plan(expected: Duration) -> Vec<(Duration, bool)> {
    let first = expected / 4;
    let second = expected / 2 + DOWN;
    vec![
        (first, true),
        (first + DOWN, false),
        (second, true),
        (second + DOWN, false),
    ]
}

/// How long a killed validator stays down.
const DOWN: Duration = Duration::from_secs(3);
/// How long a submitted transfer may go unfinalized before a client sends
/// it again (to whichever node it reaches): the node that took it may have
/// died before passing it on.
const RESUBMIT_AFTER: Duration = Duration::from_secs(2);

/// A transfer sent, by hash: when it was due, when it was last sent, and
/// the transfer itself (to send again).
type Sent = HashMap<Hash, (Instant, Instant, SignedTransaction)>;

/// Every node's URL, from the `first`-th on: a client given them all moves
/// on to the next when one cannot be reached.
fn failover(apis: &[String], first: usize) -> String {
    let n = apis.len();
    (0..n)
        .map(|k| apis[(first + k) % n].as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn measure(args: &Options, devnet: &mut Devnet) -> Result<Value> {
    let apis = devnet.file().validator_apis();
    let client = BlockingNodeClient::new(&failover(&apis, 0), None)?;
    let chain: ChainId = devnet.file().chain_id.parse()?;
    let txs = prepare(args, devnet, &client, &chain)?;
    let total = txs.len();
    eprintln!(
        "submitting {total} signed transfers through {} clients, {} a request{}",
        args.clients,
        args.batch,
        if args.kill {
            "; killing a validator with -9 twice"
        } else {
            ""
        }
    );
    let start_height = client.run(|c| c.status())?.finalized_height;
    let submitted: Arc<Mutex<Sent>> = Arc::new(Mutex::new(HashMap::new()));
    let finalized_set: Arc<Mutex<HashSet<Hash>>> = Arc::new(Mutex::new(HashSet::new()));
    let queue = Arc::new(Mutex::new(txs.into_iter().enumerate()));
    // The k-th transfer is due k / rate seconds after the start.
    let pace = args
        .rate
        .map(|r| Duration::from_nanos(1_000_000_000 / u64::from(r)));
    let start = Instant::now();
    let batch = args.batch;
    let mut workers = Vec::new();
    for w in 0..args.clients.max(1) {
        let queue = Arc::clone(&queue);
        let submitted = Arc::clone(&submitted);
        // Each client starts on its own node, and moves on if it dies.
        let api = failover(&apis, w % apis.len());
        workers.push(std::thread::spawn(move || -> Result<()> {
            let c = BlockingNodeClient::new(&api, None)?;
            loop {
                let taken: Vec<(usize, SignedTransaction)> =
                    queue.lock().expect("queue").by_ref().take(batch).collect();
                let Some(&(last, _)) = taken.last() else {
                    return Ok(());
                };
                // Paced, a transfer exists from its due time: latency counts
                // from then, time spent waiting for the batch to fill included.
                let due = |k: usize| {
                    pace.map(|p| start + p * u32::try_from(k).expect("at most 60,000 transfers"))
                };
                if let Some(at) = due(last) {
                    std::thread::sleep(at.saturating_duration_since(Instant::now()));
                }
                let at = Instant::now();
                // Recorded before sending, so the watcher cannot see a block
                // holding one before it knows it.
                {
                    let mut map = submitted.lock().expect("map");
                    for (k, stx) in &taken {
                        map.insert(stx.hash(), (due(*k).unwrap_or(at), at, stx.clone()));
                    }
                }
                let txs: Vec<SignedTransaction> = taken.into_iter().map(|(_, t)| t).collect();
                submit(&c, &txs)?;
            }
        }));
    }
    let done = Arc::new(AtomicBool::new(false));
    let resubmitted = Arc::new(AtomicUsize::new(0));
    let resubmitter = args.kill.then(|| {
        let (submitted, finalized_set) = (Arc::clone(&submitted), Arc::clone(&finalized_set));
        let (done, resubmitted) = (Arc::clone(&done), Arc::clone(&resubmitted));
        let api = failover(&apis, 1);
        std::thread::spawn(move || -> Result<()> {
            let c = BlockingNodeClient::new(&api, None)?;
            while !done.load(Relaxed) {
                std::thread::sleep(Duration::from_millis(500));
                let now = Instant::now();
                let stale: Vec<SignedTransaction> = {
                    let finalized = finalized_set.lock().expect("set");
                    let mut map = submitted.lock().expect("map");
                    map.iter_mut()
                        .filter(|(h, (_, sent, _))| {
                            !finalized.contains(*h) && now.duration_since(*sent) > RESUBMIT_AFTER
                        })
                        .map(|(_, (_, sent, stx))| {
                            *sent = now;
                            stx.clone()
                        })
                        .collect()
                };
                for chunk in stale.chunks(tranche_api::BATCH_TXS_MAX) {
                    resubmitted.fetch_add(chunk.len(), Relaxed);
                    submit(&c, chunk)?;
                }
            }
            Ok(())
        })
    });
    let expected = pace.map_or(Duration::from_secs(12), |p| {
        p * u32::try_from(total).expect("at most 60,000 transfers")
    });
    let mut plan = if args.kill {
        kill_plan(expected)
    } else {
        Vec::new()
    };
    plan.reverse();
    let victim = apis.len() - 1;
    // Watch finalized blocks, on whichever node answers.
    let mut latencies: Vec<Duration> = Vec::with_capacity(total);
    // Of each latency, the part after the block's proposal time: voting,
    // storing and serving it, as opposed to waiting to be included.
    let mut after_block: Vec<u64> = Vec::with_capacity(total);
    let mut finalized = 0usize;
    let mut twice = 0usize;
    let mut height = start_height + 1;
    let mut last = start;
    // The longest time between two blocks while transfers were finalizing.
    let mut block_gap_max = 0u64;
    let mut block_gap_at = 0u64;
    let mut last_block_time: Option<u64> = None;
    let mut kills = 0;
    let deadline = Duration::from_secs(300);
    while finalized < total || !plan.is_empty() {
        if start.elapsed() > deadline {
            bail!("only {finalized} of {total} transfers finalized in {deadline:?}");
        }
        if let Some(&(at, kill)) = plan.last() {
            if start.elapsed() >= at {
                plan.pop();
                if kill {
                    eprintln!("killing validator {victim} with -9");
                    devnet.kill_node(victim)?;
                    kills += 1;
                } else {
                    eprintln!("restarting validator {victim}");
                    devnet.restart_node(victim)?;
                }
            }
        }
        let Some(block) = client.run(|c| c.block(height))? else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let seen = Instant::now();
        let seen_ms = crate::wall_clock().0;
        let block_time = block.block.header.time.0;
        if let Some(prev) = last_block_time.filter(|_| finalized > 0) {
            if block_time.saturating_sub(prev) > block_gap_max {
                block_gap_max = block_time.saturating_sub(prev);
                block_gap_at = height;
            }
        }
        last_block_time = Some(block_time);
        let map = submitted.lock().expect("map");
        let mut finalized_now = finalized_set.lock().expect("set");
        for r in &block.receipts {
            if let Some((at, _, _)) = map.get(&r.tx_hash) {
                if let Outcome::Rejected(why) = &r.outcome {
                    bail!("a benchmark transfer was rejected: {why}");
                }
                if !finalized_now.insert(r.tx_hash) {
                    twice += 1;
                    continue;
                }
                latencies.push(seen.duration_since(*at));
                after_block.push(seen_ms.saturating_sub(block_time));
                finalized += 1;
                last = seen;
            }
        }
        height += 1;
    }
    done.store(true, Relaxed);
    for w in workers {
        w.join()
            .map_err(|_| anyhow!("a client thread panicked"))??;
    }
    if let Some(r) = resubmitter {
        r.join()
            .map_err(|_| anyhow!("the resubmitting thread panicked"))??;
    }
    if twice > 0 {
        bail!("{twice} benchmark transfers were finalized twice");
    }
    let same_root = same_state_root(&apis, height - 1)?;
    let elapsed = last.duration_since(start);
    latencies.sort();
    after_block.sort();
    let pct = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    let after_block_pct =
        |p: usize| after_block[(after_block.len() * p / 100).min(after_block.len() - 1)];
    let tx_per_s = (total as u128 * 1_000_000) / elapsed.as_micros().max(1);
    Ok(json!({
        "bench": "chain",
        "validators": apis.len(),
        "holders_preloaded": args.holders,
        "transfers": total,
        "blocks": height - start_height - 1,
        "seconds_ms": elapsed.as_millis(),
        "offered_per_s": args.rate,
        "batch": args.batch,
        "tx_per_s": tx_per_s,
        "p50_ms": pct(50).as_millis(),
        "p99_ms": pct(99).as_millis(),
        "after_block_p50_ms": after_block_pct(50),
        "after_block_p99_ms": after_block_pct(99),
        "block_gap_max_ms": block_gap_max,
        "block_gap_before": block_gap_at,
        "kills": kills,
        "resubmitted": resubmitted.load(Relaxed),
        "finalized_twice": twice,
        "same_state_root": same_root,
    }))
}

/// Submits `txs` (one on its own, more as a batch); a refusal is an error.
/// Sent again after a failover, a transfer the node holds or has finalized
/// is accepted as it was.
fn submit(c: &BlockingNodeClient, txs: &[SignedTransaction]) -> Result<()> {
    if let [stx] = txs {
        c.run(|c| c.submit(stx))?;
    } else {
        let answer = c.run(|c| c.submit_batch(txs))?;
        if answer.refused != 0 {
            let why = answer.results.iter().find_map(|r| r.error.as_ref());
            bail!(
                "the node refused {} benchmark transfers: {why:?}",
                answer.refused
            );
        }
    }
    Ok(())
}

/// Waits (up to a minute) until every validator has finalized `height`, and
/// checks they all hold the same state root after it: a validator killed
/// and restarted has caught up on the same chain.
fn same_state_root(apis: &[String], height: u64) -> Result<bool> {
    let started = Instant::now();
    let mut roots = Vec::new();
    for api in apis {
        let c = BlockingNodeClient::new(api, None)?;
        loop {
            if let Some(b) = c.run(|c| c.block(height)).ok().flatten() {
                roots.push(b.state_root);
                break;
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("the validator at {api} did not reach height {height} within a minute");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    if roots.windows(2).any(|w| w[0] != w[1]) {
        bail!("the validators hold different state roots at height {height}: {roots:?}");
    }
    Ok(true)
}
