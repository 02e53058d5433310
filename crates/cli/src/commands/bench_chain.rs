//! `tranche bench chain`: finalized transfers per second and latency on a
//! local network of four validator processes, driven through the node API.

use super::client::Client;
use super::now;
use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::sync::{Arc, Mutex};
#[allow(clippy::disallowed_types)] // a benchmark measures wall time
use std::time::{Duration, Instant};
use tranche_crypto::rand_core::OsRng;
use tranche_crypto::{sign_transaction, KeyFile, Keypair};
use tranche_ledger::Ledger;
use tranche_types::*;

/// `tranche bench chain` settings.
#[derive(Debug, Args)]
pub struct ChainArgs {
    /// Wallets sending transfers (each its own signer).
    #[arg(long, default_value_t = 1000)]
    pub senders: usize,
    /// Transfers each sender signs (at most 60: the mempool holds 64 per signer).
    #[arg(long, default_value_t = 60)]
    pub per_sender: usize,
    /// Concurrent HTTP clients submitting.
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Transfers per submission (`POST /transactions/batch`); 1 submits
    /// each on its own (`POST /transactions`).
    #[arg(long, default_value_t = 50)]
    pub batch: usize,
    /// First port of the benchmark's devnet.
    #[arg(long, default_value_t = 28000)]
    pub base_port: u16,
    /// Offer this many transfers a second, evenly paced, instead of as many
    /// as the clients can send: latency below saturation.
    #[arg(long)]
    pub rate: Option<u32>,
}

fn open(dir: &Path, org: &str, password: &str) -> Result<Keypair> {
    let text = std::fs::read_to_string(dir.join("keys").join(format!("{org}.key")))?;
    Ok(KeyFile::from_json(&text)?.open(password.as_bytes())?)
}

/// Signs and submits `payloads` from `key` in order, at most 60 in flight,
/// and waits until all are finalized.
fn setup(client: &Client, chain: &ChainId, key: &Keypair, payloads: Vec<Payload>) -> Result<()> {
    let signer = key.public_key();
    let next = |c: &Client| -> Result<u64> { c.next_nonce(&signer) };
    let first = next(client)?;
    let total = payloads.len() as u64;
    let mut sent = 0u64;
    let mut payloads = payloads.into_iter();
    loop {
        let done = next(client)? - first;
        if done >= total {
            return Ok(());
        }
        while sent < total && sent < done + 60 {
            let payload = payloads.next().expect("counted");
            let tx = Transaction {
                chain_id: chain.clone(),
                signer,
                nonce: first + sent,
                valid_until: now().plus_ms(600_000),
                payload,
            };
            client.submit(&sign_transaction(key, tx)?)?;
            sent += 1;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn usd(minor: u128) -> Money {
    Money::new(minor, Currency::known("USD").expect("USD is known"))
}

#[allow(clippy::disallowed_methods)] // Instant::now: a benchmark measures wall time
pub fn run(args: ChainArgs) -> Result<ExitCode> {
    // One issuance allocates to at most 1,000 wallets.
    if args.senders == 0 || args.senders > 1_000 {
        super::usage!("--senders must be 1 to 1000");
    }
    if args.per_sender == 0 || args.per_sender > 60 {
        super::usage!("--per-sender must be 1 to 60");
    }
    if args.batch == 0 || args.batch > 1_000 {
        super::usage!("--batch must be 1 to 1000");
    }
    if args.rate.is_some_and(|r| r == 0 || r > 1_000_000) {
        super::usage!("--rate must be 1 to 1000000 transfers a second");
    }
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("devnet");
    let exe = std::env::current_exe()?;
    let up = Command::new(&exe)
        .args([
            "devnet",
            "--detach",
            "--base-port",
            &args.base_port.to_string(),
            "--data-dir",
        ])
        .arg(&dir)
        .status()?;
    if !up.success() {
        bail!("the benchmark's devnet did not start");
    }
    let devnet: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("devnet.json"))?)?;
    let pids: Vec<u64> = devnet["nodes"]
        .as_array()
        .context("devnet.json has nodes")?
        .iter()
        .filter_map(|n| n["pid"].as_u64())
        .collect();
    let result = measure(&args, &dir, &devnet);
    for pid in &pids {
        super::signal(*pid, "TERM");
    }
    // Wait for the nodes to exit, so their ports are free for the next run.
    for _ in 0..100 {
        // `kill -0` delivers nothing: it only asks whether the process exists.
        let alive = pids.iter().any(|pid| {
            Command::new("sh")
                .arg("-c")
                .arg(format!("kill -0 {pid}"))
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        if !alive {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let report = result?;
    println!("{report}");
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::disallowed_methods)] // Instant::now: a benchmark measures wall time
fn measure(args: &ChainArgs, dir: &Path, devnet: &Value) -> Result<Value> {
    let apis: Vec<String> = devnet["nodes"]
        .as_array()
        .context("devnet.json has nodes")?
        .iter()
        .filter(|n| n["validator"] == true)
        .filter_map(|n| n["api"].as_str().map(String::from))
        .collect();
    let client = Client::new(&apis[0])?;
    let chain = client.chain_id()?;
    let password = std::fs::read_to_string(dir.join("password"))?;
    let tsp = open(dir, "devnet-tsp", &password)?;
    let kyc = open(dir, "devnet-kyc", &password)?;
    let appraiser = open(dir, "devnet-appraiser", &password)?;
    let issuer = open(dir, "devnet-issuer", &password)?;
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
        .map(|k| Payload::RegisterWallet(Ledger::sign_binding(&chain, k, &investor)))
        .collect();
    let asset: AssetId = "A-BENCH".parse()?;
    // The asset is priced so that its price over the unit price (1 USD) is
    // exactly the number of tokens issued (F5-2).
    let each = 1_000u128;
    let amount = Units(each * senders.len() as u128);
    let price = usd(amount.0 * 100);
    let token: TokenId = "T-BENCH".parse()?;
    wallets.push(Payload::RegisterAsset(RegisterAsset {
        asset: asset.clone(),
        owner: did.clone(),
        kind: AssetKind::Tangible,
        description: Hash([1; 32]),
        price: price.clone(),
        tolerance_bps: 500,
    }));
    setup(&client, &chain, &tsp, wallets)?;
    setup(
        &client,
        &chain,
        &kyc,
        vec![Payload::AddClaim(AddClaim {
            did: did.clone(),
            topic: ClaimTopic::KYC,
            country: None,
            digest: Hash([7; 32]),
            expiry_date: "2099-12-31".parse()?,
        })],
    )?;
    setup(
        &client,
        &chain,
        &appraiser,
        vec![Payload::RecordAppraisal(RecordAppraisal {
            asset: asset.clone(),
            value: price,
        })],
    )?;
    let allocations = BoundedVec(
        senders
            .iter()
            .map(|k| Allocation {
                wallet: k.address(),
                amount: Units(each),
            })
            .collect(),
    );
    let request = RequestIssuance {
        request: "R-BENCH".parse()?,
        asset,
        token: token.clone(),
        unit_price: usd(100),
        issue_date: "2026-01-01".parse()?,
        expiry_date: "2099-12-31".parse()?,
        amount,
        issuer: "devnet-issuer".parse()?,
        allocations: allocations.clone(),
        rules: TokenRules {
            required_topics: BoundedVec(vec![ClaimTopic::KYC]),
            allowed_countries: BoundedVec::default(),
            denied_countries: BoundedVec::default(),
            max_holders: 0,
            max_balance_per_identity: Units(0),
            lockup_until: None,
        },
    };
    let request_id = request.request.clone();
    setup(
        &client,
        &chain,
        &tsp,
        vec![Payload::RequestIssuance(request)],
    )?;
    setup(
        &client,
        &chain,
        &issuer,
        vec![Payload::ExecuteIssuance(ExecuteIssuance {
            request: request_id.clone(),
            amount,
            allocations,
        })],
    )?;
    let issued = client
        .found("benchmark issuance", |c| c.issuance(request_id.as_str()))?
        .data
        .check
        .and_then(|c| c.issued);
    if issued != Some(amount) {
        bail!("the benchmark token was not issued: {issued:?} of {amount}");
    }

    // Sign everything before the clock starts.
    let valid_until = now().plus_ms(600_000);
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
    let total = txs.len();
    eprintln!(
        "submitting {total} signed transfers through {} clients, {} a request",
        args.clients, args.batch
    );
    let start_height = client.status()?.finalized_height;
    let submitted: Arc<Mutex<HashMap<Hash, Instant>>> = Arc::new(Mutex::new(HashMap::new()));
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
        let api = apis[w % apis.len()].clone();
        workers.push(std::thread::spawn(move || -> Result<()> {
            let c = Client::new(&api)?;
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
                        map.insert(stx.hash(), due(*k).unwrap_or(at));
                    }
                }
                let txs: Vec<SignedTransaction> = taken.iter().map(|(_, t)| t.clone()).collect();
                if let [stx] = txs.as_slice() {
                    c.submit(stx)?;
                } else {
                    let answer = c.submit_batch(&txs)?;
                    if answer.refused != 0 {
                        bail!("the node refused {} benchmark transfers", answer.refused);
                    }
                }
            }
        }));
    }
    // Watch finalized blocks on one node.
    let mut latencies: Vec<Duration> = Vec::with_capacity(total);
    // Of each latency, the part after the block's proposal time: voting,
    // storing and serving it, as opposed to waiting to be included.
    let mut after_block: Vec<u64> = Vec::with_capacity(total);
    let mut finalized = 0usize;
    let mut height = start_height + 1;
    let mut last = start;
    // The longest time between two blocks while transfers were finalizing.
    let mut block_gap_max = 0u64;
    let mut block_gap_at = 0u64;
    let mut last_block_time: Option<u64> = None;
    let deadline = Duration::from_secs(300);
    while finalized < total {
        if start.elapsed() > deadline {
            bail!("only {finalized} of {total} transfers finalized in {deadline:?}");
        }
        let Some(block) = client.call(|c| c.block(height))? else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let seen = Instant::now();
        let seen_ms = now().0;
        let block_time = block.block.header.time.0;
        if let Some(prev) = last_block_time.filter(|_| finalized > 0) {
            if block_time.saturating_sub(prev) > block_gap_max {
                block_gap_max = block_time.saturating_sub(prev);
                block_gap_at = height;
            }
        }
        last_block_time = Some(block_time);
        let map = submitted.lock().expect("map");
        for r in &block.receipts {
            if let Some(at) = map.get(&r.tx_hash) {
                if let Outcome::Rejected(why) = &r.outcome {
                    bail!("a benchmark transfer was rejected: {why}");
                }
                latencies.push(seen.duration_since(*at));
                after_block.push(seen_ms.saturating_sub(block_time));
                finalized += 1;
                last = seen;
            }
        }
        height += 1;
    }
    for w in workers {
        w.join()
            .map_err(|_| anyhow!("a client thread panicked"))??;
    }
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
    }))
}
