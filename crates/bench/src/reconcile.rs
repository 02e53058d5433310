//! `tranche bench reconcile`: the AML regulator's service reconciling an
//! exchange's reports against the chain, transfers per second, against
//! reading and decoding the same transfers from a node alone.
#![allow(clippy::disallowed_methods)] // a benchmark measures wall time

use crate::people::{until, Services};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
#[allow(clippy::disallowed_types)] // a benchmark measures wall time
use std::time::{Duration, Instant};
use tranche_api::client::NodeClient;
use tranche_api::report::{kind_name, ExchangeReport, ReportedTransfer, SignedReport};
use tranche_crypto::rand_core::OsRng;
use tranche_crypto::{sign_transaction, Domain, Keypair};
use tranche_devnet::DevnetFile;
use tranche_ledger::Ledger;
use tranche_service::signed::SignedClient;
use tranche_testkit::world::{
    appraisal, claim_until, execution, issuance_request, record_ownership, register_asset, usd,
};
use tranche_types::*;

/// The most transfers a run puts on chain.
pub const TRANSFERS_MAX: u64 = 10_000_000;
/// Wallets sending: one issuance allocates to at most this many.
const SENDERS: usize = 1_000;
/// Transfers of one sender in flight: a node holds 64 of one signer's.
const PER_SENDER_ROUND: u64 = 60;
/// Transfers in one report: its JSON stays well under what the
/// regulator takes in one request.
const REPORT_TRANSFERS: usize = 20_000;

/// What `tranche bench reconcile` measures.
#[derive(Debug, Clone)]
pub struct Options {
    /// Transfers put on chain between the exchange's wallets.
    pub transfers: u64,
    /// First port of the benchmark's devnet.
    pub base_port: u16,
}

/// Runs the benchmark on a devnet of its own in a temporary folder, started
/// with `tranche_exe`, and prints one JSON object.
pub fn run(tranche_exe: &Path, options: &Options) -> Result<()> {
    if options.transfers == 0 || options.transfers > TRANSFERS_MAX {
        bail!("transfers must be 1 to {TRANSFERS_MAX}");
    }
    crate::warn_if_debug();
    // The benchmark signs as the organisations and runs the regulator's
    // service itself: a devnet without services.
    let (tmp, mut devnet) = crate::devnet(tranche_exe, options.base_port, false)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(measure(tranche_exe, options, devnet.file(), tmp.path()));
    devnet.stop();
    println!("{}", result?);
    Ok(())
}

async fn measure(exe: &Path, options: &Options, devnet: &DevnetFile, dir: &Path) -> Result<Value> {
    let node = NodeClient::new(&devnet.nodes[0].api, None)?;
    let chain = node.status().await?.chain_id;
    let exchange = Arc::new(devnet.open_key("devnet-exchange")?);
    let senders: Vec<Keypair> = (0..SENDERS.min(options.transfers as usize))
        .map(|_| Keypair::generate(&mut OsRng))
        .collect();
    let receiver = Keypair::generate(&mut OsRng);
    let investor = Keypair::generate(&mut OsRng);
    let did = Ledger::did_of_key(&investor.public_key());
    eprintln!(
        "setting up: {} exchange wallets of one KYC'd identity, one token",
        senders.len() + 1
    );
    // The exchange binds every wallet: they are its trader's.
    let bindings: Vec<Payload> = senders
        .iter()
        .chain([&receiver])
        .map(|k| Payload::RegisterWallet(Ledger::sign_binding(&chain, k, &investor)))
        .collect();
    crate::send_in_order(&node, &chain, &exchange, bindings).await?;
    let per = options.transfers.div_ceil(senders.len() as u64);
    let amount = u128::from(per) * senders.len() as u128;
    let price = usd(amount * 10_000);
    let [registry, tsp, kyc, appraiser, issuer] = [
        "devnet-registry",
        "devnet-tsp",
        "devnet-kyc",
        "devnet-appraiser",
        "devnet-issuer",
    ]
    .map(|o| devnet.open_key(o));
    let (registry, tsp, kyc, appraiser, issuer) = (registry?, tsp?, kyc?, appraiser?, issuer?);
    let until_day = "2099-12-31".parse()?;
    for (key, p) in [
        (&registry, record_ownership("A-RECON", did.clone())),
        (&tsp, register_asset("A-RECON", did.clone(), price.clone())),
        (&kyc, claim_until(&did, ClaimTopic::KYC, None, until_day)),
        (&appraiser, appraisal("A-RECON", price)),
    ] {
        crate::send_in_order(&node, &chain, key, vec![p]).await?;
    }
    let allocations: Vec<(WalletAddress, u128)> = senders
        .iter()
        .map(|k| (k.address(), u128::from(per)))
        .collect();
    let request = issuance_request(
        "R-RECON",
        "A-RECON",
        "T-RECON",
        "devnet-issuer",
        &allocations,
        amount,
    );
    let execute = execution(&request);
    let request = Payload::RequestIssuance(request);
    crate::send_in_order(&node, &chain, &tsp, vec![request]).await?;
    crate::send_in_order(&node, &chain, &issuer, vec![execute]).await?;

    // The transfers, a round of at most 60 a sender at a time.
    eprintln!("putting {} transfers on chain", options.transfers);
    let token: TokenId = "T-RECON".parse()?;
    let valid_until = crate::wall_clock().plus_ms(3_600_000);
    let mut left = options.transfers;
    let mut round = 0u64;
    while left > 0 {
        let mut txs = Vec::new();
        'round: for i in 0..PER_SENDER_ROUND {
            for k in &senders {
                if left == 0 {
                    break 'round;
                }
                let tx = Transaction {
                    chain_id: chain.clone(),
                    signer: k.public_key(),
                    nonce: 1 + round * PER_SENDER_ROUND + i,
                    valid_until,
                    payload: Payload::Transfer(Transfer {
                        token: token.clone(),
                        to: receiver.address(),
                        amount: Units(1),
                        reference: None,
                    }),
                };
                txs.push(sign_transaction(k, tx)?);
                left -= 1;
            }
        }
        let last: Vec<Hash> = txs
            .iter()
            .rev()
            .take(senders.len())
            .map(|t| t.hash())
            .collect();
        let apis = devnet.validator_apis();
        let mut batches = Vec::new();
        for (n, chunk) in txs.chunks(tranche_api::BATCH_TXS_MAX).enumerate() {
            let client = NodeClient::new(&apis[n % apis.len()], None)?;
            let chunk = chunk.to_vec();
            batches.push(tokio::spawn(async move {
                let answer = client.submit_batch(&chunk).await?;
                if answer.refused != 0 {
                    bail!("the node refused {} benchmark transfers", answer.refused);
                }
                Ok(())
            }));
        }
        for b in batches {
            b.await??;
        }
        for h in &last {
            if node.wait(h, Duration::from_secs(300)).await?.is_none() {
                bail!("a benchmark transfer was not final within five minutes");
            }
        }
        round += 1;
    }
    let through = node.status().await?.finalized_height;

    // (a) Reading and decoding the same transfers from a node alone.
    let ours: HashSet<WalletAddress> = senders
        .iter()
        .chain([&receiver])
        .map(Keypair::address)
        .collect();
    let reader = NodeClient::new(&devnet.nodes[3].api, None)?;
    let start = Instant::now();
    let mut touching: Vec<(u64, TransferRecord)> = Vec::new();
    for height in 1..=through {
        let block = reader
            .block(height)
            .await?
            .with_context(|| format!("block {height}"))?;
        for t in block.transfers {
            if t.from.is_some_and(|w| ours.contains(&w)) || ours.contains(&t.to) {
                touching.push((height, t));
            }
        }
    }
    let read_time = start.elapsed();
    let count = touching.len();
    if (count as u64) < options.transfers {
        bail!("only {count} transfers touch the exchange's wallets");
    }

    // The exchange's reports: whole blocks, about 20,000 transfers each.
    let did_s = did.to_string();
    let mut reports: Vec<SignedReport> = Vec::new();
    let mut entries: Vec<ReportedTransfer> = Vec::new();
    let mut after = 0u64;
    let mut prev = Hash([0; 32]);
    let mut cut = |entries: &mut Vec<ReportedTransfer>, through: u64| {
        let report = ExchangeReport {
            exchange: "devnet-exchange".into(),
            seq: reports.len() as u64 + 1,
            from_ms: 0,
            to_ms: 0,
            prev: prev.to_hex(),
            after_height: after,
            through_height: through,
            trades: Vec::new(),
            transfers: std::mem::take(entries),
        };
        let hash = report.hash();
        prev = hash;
        after = through;
        reports.push(SignedReport {
            signature: exchange.sign(Domain::ExchangeReport, &chain, &hash.0),
            hash: hash.to_hex(),
            report,
        });
    };
    for (i, (height, t)) in touching.iter().enumerate() {
        let bound = |w: &WalletAddress| ours.contains(w).then(|| did_s.clone());
        entries.push(ReportedTransfer {
            trade: None,
            kind: kind_name(t.kind),
            token: t.token.to_string(),
            from_wallet: t.from.map(|w| w.to_string()),
            from: t.from.as_ref().and_then(bound),
            to_wallet: t.to.to_string(),
            to: bound(&t.to),
            amount: t.amount,
            tx: t.tx.to_hex(),
            height: *height,
        });
        let block_ends = touching.get(i + 1).is_none_or(|(h, _)| h != height);
        if entries.len() >= REPORT_TRANSFERS && block_ends {
            cut(&mut entries, *height);
        }
    }
    cut(&mut entries, through);
    // In binary, as the exchange's service sends them.
    let bodies: Vec<Vec<u8>> = reports.iter().map(SignedReport::to_binary).collect();

    // (b) The regulator's service, started now on its own SQLite database:
    // following the chain from its first block, taking the reports and
    // reconciling every one.
    let data = dir.join("regulator");
    std::fs::create_dir_all(&data)?;
    let port = options.base_port + 306;
    let api = format!("http://127.0.0.1:{port}");
    let config = data.join("regulator.toml");
    std::fs::write(
        &config,
        format!(
            "[service]\norg = \"devnet-regulator\"\nkey_file = \"{}\"\npassword_file = \"{}\"\n\
             node = \"{}\"\nlisten = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\npoll_ms = 20\n",
            Path::new(&devnet.keys)
                .join("devnet-regulator.key")
                .display(),
            devnet.password_file,
            devnet.nodes[3].api,
            data.join("service").display()
        ),
    )?;
    let analyst = Keypair::generate(&mut OsRng);
    let credential = data.join("analyst.json");
    let staff = Command::new(exe)
        .args(["regulator", "--config"])
        .arg(&config)
        .args(["staff", "add", "--role", "analyst", "--subject"])
        .arg(tranche_identity::DidKey::from_public_key(&analyst.public_key()).did())
        .arg("--out")
        .arg(&credential)
        .output()?;
    if !staff.status.success() {
        bail!(
            "the regulator's staff credential: {}",
            String::from_utf8_lossy(&staff.stderr)
        );
    }
    let credential: Value = serde_json::from_str(&std::fs::read_to_string(&credential)?)?;
    let log = std::fs::File::create(data.join("regulator.log"))?;
    let mut service = Service(
        Command::new(exe)
            .args(["regulator", "--config"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?,
    );
    let http = Services::new(4)?;
    until("the regulator's service answers", || async {
        Ok(http
            .http
            .get(format!("{api}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success()))
    })
    .await?;
    let token = http.login(&api, &analyst, vec![credential]).await?;
    eprintln!(
        "the regulator reconciles {} reports of {count} transfers",
        reports.len()
    );
    let start = Instant::now();
    let client = SignedClient::new(Arc::clone(&exchange), chain.clone(), "devnet-exchange");
    for (n, body) in bodies.into_iter().enumerate() {
        let answer = client
            .send_as(
                reqwest::Method::POST,
                &api,
                "/reports",
                tranche_api::report_binary::REPORT_MEDIA_TYPE,
                body,
            )
            .await?;
        if !answer.status().is_success() {
            bail!("report {}: {}", n + 1, answer.text().await?);
        }
    }
    let url = format!("{api}/reconciliations?exchange=devnet-exchange");
    let done = std::sync::Mutex::new(Value::Null);
    until("every report reconciled", || async {
        let now = http
            .call(reqwest::Method::GET, &url, Some(&token), None)
            .await?;
        let all = now.as_array().is_some_and(|a| a.len() == reports.len());
        *done.lock().unwrap_or_else(|e| e.into_inner()) = now;
        Ok(all)
    })
    .await?;
    let done = done.into_inner().unwrap_or_else(|e| e.into_inner());
    let reconcile_time = start.elapsed();
    service.stop();
    let all = done.as_array().map(Vec::as_slice).unwrap_or_default();
    let matched: u64 = all.iter().filter_map(|r| r["matched"].as_u64()).sum();
    let clean = all.iter().all(|r| r["verdict"] == "clean");
    if !clean || matched != count as u64 {
        bail!("the reconciliation is not clean: {matched} of {count} matched: {done}");
    }
    let transfers_per_s = crate::per_second(count, reconcile_time);
    let read_only_per_s = crate::per_second(count, read_time);
    Ok(json!({
        "bench": "reconcile",
        "transfers": count,
        "blocks": through,
        "reports": reports.len(),
        "read_ms": read_time.as_millis(),
        "reconcile_ms": reconcile_time.as_millis(),
        "transfers_per_s": transfers_per_s,
        "read_only_per_s": read_only_per_s,
        "ratio": crate::ratio(read_time, reconcile_time),
    }))
}

/// The regulator's process, stopped when the benchmark ends however it
/// ends.
struct Service(Child);

impl Service {
    fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
    }
}
