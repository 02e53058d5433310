//! `tranche bench custody`: the custodian's service at scale (SR-3). A
//! thousand holders, each with their own key and DID, log in to the
//! custodian and the bank with presentations, have a custodial wallet
//! opened on their consent and deposit tokens in it; then each instructs
//! one transfer out through the custodian's API (an authorization signed
//! offline, checked against the policy, carried in the custodian's
//! transaction).
//!
//! Reported: co-signed transfers per second from the first `POST` to the
//! last final on chain, against the same holders' plain transfers sent
//! straight to the nodes on the same devnet in the same run; and the time
//! from each co-signed transfer's finality (the bench sees its block) to
//! its notice on the custodian's live stream.
#![allow(clippy::disallowed_methods)] // a benchmark measures wall time

use crate::people::{balance, finalized, service, submit_to_nodes, until, Person, Services};
use anyhow::{bail, Context, Result};
use futures_util::{stream, StreamExt as _, TryStreamExt as _};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
#[allow(clippy::disallowed_types)] // a benchmark measures wall time
use std::time::{Duration, Instant};
use tranche_api::client::NodeClient;
use tranche_devnet::DevnetFile;
use tranche_ledger::Ledger;
use tranche_testkit::world::claim_until;
use tranche_types::*;

/// The most holders one run takes.
pub const HOLDERS_MAX: usize = 20_000;
/// The bank's deposit token in the devnet: what the holders keep.
const CASH: &str = "USD-DEP";
/// What each holder deposits, in cents.
const DEPOSIT: u128 = 100;

/// What `tranche bench custody` measures.
#[derive(Debug, Clone)]
pub struct Options {
    /// Holders, each making one plain and one co-signed transfer.
    pub holders: usize,
    /// Concurrent HTTP clients, for the set-up and the instructions.
    pub clients: usize,
    /// Instructions handed in per second, if paced.
    pub rate: Option<u64>,
    /// First port of the benchmark's devnet.
    pub base_port: u16,
}

/// Runs the benchmark on a devnet of its own, with its role services, in a
/// temporary folder, and prints one JSON object.
pub fn run(tranche_exe: &Path, options: &Options) -> Result<()> {
    if options.holders == 0 || options.holders > HOLDERS_MAX {
        bail!("holders must be 1 to {HOLDERS_MAX}");
    }
    if options.clients == 0 || options.clients > 1_024 {
        bail!("clients must be 1 to 1024");
    }
    if options.rate.is_some_and(|r| r == 0 || r > 100_000) {
        bail!("rate must be 1 to 100000 instructions a second");
    }
    crate::warn_if_debug();
    let (_tmp, mut devnet) = crate::devnet(tranche_exe, options.base_port, true)?;
    let kyc = devnet.open_key("devnet-kyc")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(measure(options, devnet.file(), &kyc));
    devnet.stop();
    println!("{}", result?);
    Ok(())
}

/// When each transaction was first told of on a stream.
type Arrivals = Arc<Mutex<HashMap<Hash, Instant>>>;

/// Follows the server-sent events at `url` (with `token`, if given) and
/// notes when each transaction (`tx_of` an event) is first told of.
fn follow(
    http: reqwest::Client,
    url: String,
    token: Option<String>,
    tx_of: fn(&Value) -> Option<&str>,
) -> Arrivals {
    let arrivals: Arrivals = Arc::default();
    let seen = Arc::clone(&arrivals);
    tokio::spawn(async move {
        let mut req = http.get(&url);
        if let Some(t) = &token {
            req = req.bearer_auth(t);
        }
        let Ok(mut resp) = req.send().await else {
            return;
        };
        let mut pending = String::new();
        while let Ok(Some(chunk)) = resp.chunk().await {
            let at = Instant::now();
            pending.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = pending.find('\n') {
                let line: String = pending.drain(..=end).collect();
                let Some(data) = line.trim_end().strip_prefix("data:") else {
                    continue;
                };
                let Ok(event) = serde_json::from_str::<Value>(data.trim()) else {
                    continue;
                };
                if let Some(tx) = tx_of(&event).and_then(|t| t.parse().ok()) {
                    seen.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .entry(tx)
                        .or_insert(at);
                }
            }
        }
    });
    arrivals
}

/// The `percent`-th percentile of `sorted` (non-empty), in ms.
fn percentile_ms(sorted: &[Duration], percent: usize) -> u128 {
    let i = (sorted.len() * percent)
        .div_ceil(100)
        .clamp(1, sorted.len())
        - 1;
    sorted[i].as_millis()
}

async fn measure(
    args: &Options,
    devnet: &DevnetFile,
    kyc: &tranche_crypto::Keypair,
) -> Result<Value> {
    let n = args.holders;
    let par = args.clients;
    let node = NodeClient::new(&devnet.nodes[0].api, None)?;
    let chain: ChainId = devnet.chain_id.parse()?;
    let password = Path::new(&devnet.password_file);
    let (custodian, bank) = (service(devnet, "custodian")?, service(devnet, "bank")?);
    let http = Services::new(par)?;
    let post = reqwest::Method::POST;
    let (custodian_op, bank_op) = (
        http.staff(custodian, 0, password).await?,
        http.staff(bank, 0, password).await?,
    );

    eprintln!(
        "setting up: {n} holders with KYC, bound wallets, bank deposits and custodial wallets"
    );
    let holders: Vec<Person> = (0..n).map(|_| Person::new(kyc)).collect::<Result<_>>()?;
    // KYC claims and wallet bindings on chain, by the KYC provider (a claim
    // issuer may bind wallets; it runs no service whose nonces it would race).
    let until_date: Date = "2099-12-31".parse()?;
    let mut claims = Vec::with_capacity(n);
    let mut bindings = Vec::with_capacity(n);
    for p in &holders {
        let did: Did = p.did.parse().map_err(|e| anyhow::anyhow!("{e:?}"))?;
        claims.push(claim_until(&did, ClaimTopic::KYC, None, until_date));
        bindings.push(Payload::RegisterWallet(Ledger::sign_binding(
            &chain, &p.key, &p.key,
        )));
    }
    claims.extend(bindings);
    crate::send_in_order(&node, &chain, kyc, claims).await?;
    // Logins at the custodian and the bank (KYC).
    let sessions: Vec<(String, String)> = stream::iter(&holders)
        .map(|p| {
            let http = http.clone();
            let kyc_vc = vec![p.credentials[0].clone()];
            async move {
                let at_custodian = http.login(&custodian.api, &p.key, kyc_vc.clone()).await?;
                let at_bank = http.login(&bank.api, &p.key, kyc_vc).await?;
                Ok::<_, anyhow::Error>((at_custodian, at_bank))
            }
        })
        .buffered(par)
        .try_collect()
        .await?;
    // Bank accounts and deposits: each holder gets twice the deposit, one
    // for the plain transfer, one for custody.
    let (accounts, deposits) = (
        format!("{}/accounts", bank.api),
        format!("{}/deposits", bank.api),
    );
    stream::iter(holders.iter().zip(&sessions).enumerate())
        .map(|(i, (p, (_, at_bank)))| {
            let (http, post) = (http.clone(), post.clone());
            let (accounts, deposits, bank_op) = (&accounts, &deposits, &bank_op);
            async move {
                let wallet = json!({"wallet": p.wallet().to_string()});
                http.call(post.clone(), accounts, Some(at_bank), Some(&wallet))
                    .await?;
                let deposit = json!({"did": p.did, "amount": (2 * DEPOSIT).to_string(),
                                     "reference": format!("CUSTODY-{i}")});
                http.call(post, deposits, Some(bank_op), Some(&deposit))
                    .await
            }
        })
        .buffer_unordered(par)
        .try_collect::<Vec<Value>>()
        .await?;
    // Custodial wallets, each on its holder's consent.
    let org: OrgId = custodian.org.parse()?;
    let holders_url = format!("{}/holders", custodian.api);
    let vaults: Vec<WalletAddress> = stream::iter(holders.iter().zip(&sessions))
        .map(|(p, (at_custodian, _))| {
            let (http, post, url) = (http.clone(), post.clone(), &holders_url);
            let consent =
                Payload::OpenCustodialWallet(Ledger::sign_custody_consent(&chain, &org, &p.key));
            async move {
                let opened = http
                    .call(
                        post,
                        url,
                        Some(at_custodian),
                        Some(&serde_json::to_value(consent)?),
                    )
                    .await?;
                opened["wallet"]
                    .as_str()
                    .and_then(|w| w.parse::<WalletAddress>().ok())
                    .context("the custodian answered no wallet")
            }
        })
        .buffered(par)
        .try_collect()
        .await?;
    until(
        "the deposits minted and the custodial wallets open",
        || async {
            let last = holders.last().context("holders")?;
            let vault = vaults.last().context("vaults")?;
            Ok(balance(&node, &last.wallet(), CASH).await? == 2 * DEPOSIT
                && node.wallet(vault).await?.data.custody.is_some())
        },
    )
    .await?;
    // Each holder puts half into custody, signed with their own key.
    let nonce = node.next_nonce(&holders[0].key.public_key()).await?;
    let entrust: Vec<SignedTransaction> = holders
        .iter()
        .zip(&vaults)
        .map(|(p, vault)| p.sign(&chain, nonce, transfer(*vault)))
        .collect::<Result<_>>()?;
    let apis = devnet.validator_apis();
    let from = node.status().await?.finalized_height + 1;
    let hashes: HashSet<Hash> = entrust.iter().map(SignedTransaction::hash).collect();
    let (sent, seen) = tokio::join!(
        submit_to_nodes(&apis, entrust, par),
        finalized(&node, from, hashes)
    );
    sent?;
    seen?;
    // The custodian checks balances on its own node: let it catch up.
    let its_node = NodeClient::new(&devnet.nodes[4].api, None)?;
    let height = node.status().await?.finalized_height;
    until("the custodian's node at the deposits", || async {
        Ok(its_node.status().await?.finalized_height >= height)
    })
    .await?;

    // The baseline: each holder sends a cent from their own wallet to the
    // next holder, straight to the nodes.
    let plain: Vec<SignedTransaction> = holders
        .iter()
        .enumerate()
        .map(|(i, p)| {
            p.sign(
                &chain,
                nonce + 1,
                transfer_of(holders[(i + 1) % n].wallet(), 1),
            )
        })
        .collect::<Result<_>>()?;
    eprintln!("measuring: {n} plain transfers straight to the nodes");
    // Finality as a node tells it: its live stream of transfers, followed
    // from here on for both measurements alike.
    let finality = follow(
        http.http.clone(),
        format!("{}/events?token={CASH}", devnet.nodes[0].api),
        None,
        |e| e["transfer"]["tx"].as_str(),
    );
    let from = node.status().await?.finalized_height + 1;
    let hashes: HashSet<Hash> = plain.iter().map(SignedTransaction::hash).collect();
    let start = Instant::now();
    submit_to_nodes(&apis, plain, par).await?;
    let plain_time = all_told(&finality, &hashes).await?.duration_since(start);
    check_applied(&node, from, &hashes).await?;

    // Co-signed: each holder's authorization of a cent out of custody to
    // the next holder, handed to the custodian.
    // The custodian's notices: its live stream, as its staff (every
    // holder's).
    let notices = follow(
        http.http.clone(),
        format!("{}/events/stream", custodian.api),
        Some(custodian_op.clone()),
        |e| e["tx"].as_str(),
    );
    let valid_until = crate::wall_clock().plus_ms(600_000);
    let authorizations: Vec<Value> = holders
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let p = Ledger::sign_authorization(
                &chain,
                &org,
                &p.key,
                (CASH.parse()?, holders[(i + 1) % n].wallet(), Units(1)),
                None,
                0,
                valid_until,
            );
            Ok(serde_json::to_value(Payload::CustodialTransfer(p))?)
        })
        .collect::<Result<_>>()?;
    let pace = args
        .rate
        .map_or(String::new(), |r| format!(", {r} a second"));
    eprintln!(
        "measuring: {n} co-signed transfers through the custodian's API, {par} at a time{pace}"
    );
    let from = node.status().await?.finalized_height + 1;
    let instructions = format!("{}/instructions", custodian.api);
    let start = Instant::now();
    let submitted: Vec<Value> = stream::iter(authorizations.iter().zip(&sessions).enumerate())
        .map(|(i, (body, (at_custodian, _)))| {
            let (http, post, url) = (http.clone(), post.clone(), &instructions);
            // Paced: the i-th goes out i / rate seconds after the first.
            let due = args
                .rate
                .map(|r| start + Duration::from_micros(i as u64 * 1_000_000 / r));
            async move {
                if let Some(due) = due {
                    tokio::time::sleep_until(due.into()).await;
                }
                http.call(post, url, Some(at_custodian), Some(body)).await
            }
        })
        .buffer_unordered(par)
        .try_collect()
        .await?;
    eprintln!(
        "  every instruction recorded after {} ms",
        start.elapsed().as_millis()
    );
    let hashes: HashSet<Hash> = submitted
        .iter()
        .map(|v| {
            v["tx"]
                .as_str()
                .and_then(|t| t.parse().ok())
                .with_context(|| format!("an instruction not sent: {v}"))
        })
        .collect::<Result<_>>()?;
    let last = all_told(&finality, &hashes).await?;
    all_told(&notices, &hashes).await?;
    let (final_at, told_at) = (
        finality.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        notices.lock().unwrap_or_else(|e| e.into_inner()).clone(),
    );
    let cosigned_time = last.duration_since(start);
    let mut delays: Vec<Duration> = hashes
        .iter()
        .map(|h| told_at[h].saturating_duration_since(final_at[h]))
        .collect();
    delays.sort();
    check_applied(&node, from, &hashes).await?;
    Ok(json!({
        "bench": "custody",
        "holders": n,
        "clients": par,
        "rate": args.rate,
        "cosigned_ms": cosigned_time.as_millis(),
        "plain_ms": plain_time.as_millis(),
        "cosigned_per_s": crate::per_second(n, cosigned_time),
        "plain_per_s": crate::per_second(n, plain_time),
        "ratio": crate::ratio(plain_time, cosigned_time),
        "notice_p50_ms": percentile_ms(&delays, 50),
        "notice_p99_ms": percentile_ms(&delays, 99),
    }))
}

fn transfer(to: WalletAddress) -> Payload {
    transfer_of(to, DEPOSIT)
}

fn transfer_of(to: WalletAddress, units: u128) -> Payload {
    Payload::Transfer(Transfer {
        token: CASH.parse().expect("the devnet's deposit token id"),
        to,
        amount: Units(units),
        reference: None,
    })
}

/// Waits until `stream` told of every transaction of `hashes`; when it told
/// of the last.
async fn all_told(stream: &Arrivals, hashes: &HashSet<Hash>) -> Result<Instant> {
    until("every transaction told of", || async {
        let seen = stream.lock().unwrap_or_else(|e| e.into_inner());
        Ok(hashes.iter().all(|h| seen.contains_key(h)))
    })
    .await?;
    let seen = stream.lock().unwrap_or_else(|e| e.into_inner());
    hashes
        .iter()
        .map(|h| seen[h])
        .max()
        .context("no transaction to wait for")
}

/// Checks that every transaction of `hashes`, final from height `from`
/// on, was applied.
async fn check_applied(node: &NodeClient, from: u64, hashes: &HashSet<Hash>) -> Result<()> {
    let tip = node.status().await?.finalized_height;
    let mut found = 0;
    for height in from..=tip {
        let Some(block) = node.block(height).await? else {
            continue;
        };
        for r in block
            .receipts
            .iter()
            .filter(|r| hashes.contains(&r.tx_hash))
        {
            if let Outcome::Rejected(why) = &r.outcome {
                bail!("a co-signed transfer was rejected: {why}");
            }
            found += 1;
        }
    }
    if found != hashes.len() {
        bail!(
            "{found} co-signed transfers found on chain, not {}",
            hashes.len()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_options_are_refused_before_anything_starts() {
        let exe = Path::new("/nonexistent/tranche");
        let ok = Options {
            holders: 10,
            clients: 4,
            rate: Some(100),
            base_port: 29_000,
        };
        for bad in [
            Options {
                holders: 0,
                ..ok.clone()
            },
            Options {
                holders: HOLDERS_MAX + 1,
                ..ok.clone()
            },
            Options {
                clients: 0,
                ..ok.clone()
            },
            Options {
                rate: Some(0),
                ..ok.clone()
            },
            Options {
                rate: Some(100_001),
                ..ok.clone()
            },
        ] {
            let e = run(exe, &bad).unwrap_err().to_string();
            assert!(e.contains("must be"), "{e}");
        }
    }

    #[test]
    fn percentiles_are_of_the_sorted_delays() {
        let d: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile_ms(&d, 50), 50);
        assert_eq!(percentile_ms(&d, 99), 99);
        assert_eq!(percentile_ms(&d[..1], 99), 1);
        assert_eq!(percentile_ms(&d[..3], 50), 2);
    }
}
