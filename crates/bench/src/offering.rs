//! `tranche bench offering`: the primary market at scale, through the
//! services. Thousands of investors, each with their own key and DID, log
//! in to the TSP and the escrow bank with presentations, have their wallets
//! bound and their money deposited; then each subscribes one token through
//! the TSP's API (`POST /subscriptions`, signed offline by the investor),
//! the bank closes the offering when its window ends, the issuer's two
//! operators approve, the issuer issues, and the bank pays the owner.
//!
//! Reported: subscriptions per second from the first `POST` to the last
//! subscription final on chain, against the same investors' plain transfers
//! submitted straight to the nodes on the same devnet in the same run; and
//! the chain time from the window's end to the block that pays the owner.
#![allow(clippy::disallowed_methods)] // a benchmark measures wall time

use crate::people::{balance, finalized, service, submit_to_nodes, until, Person, Services};
use anyhow::{anyhow, bail, Context, Result};
use futures_util::{stream, StreamExt as _, TryStreamExt as _};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::path::Path;
#[allow(clippy::disallowed_types)] // a benchmark measures wall time
use std::time::Instant;
use tranche_api::client::NodeClient;
use tranche_crypto::Keypair;
use tranche_devnet::DevnetFile;
use tranche_identity::{CredentialKind, CredentialRequest};
use tranche_ledger::Ledger;
use tranche_testkit::world::{appraisal, claim_until, default_rules, usd};
use tranche_types::*;

/// The most investors one run takes.
pub const INVESTORS_MAX: usize = 100_000;
/// The unit price SP, in cents: 100.00 USD.
const UNIT_PRICE: u128 = 10_000;
/// The asset, token and offering the run creates.
const ASSET: &str = "A-OFFER";
const TOKEN: &str = "T-OFFER";
const OFFERING: &str = "O-OFFER";
/// The bank's deposit token in the devnet.
const CASH: &str = "USD-DEP";

/// What `tranche bench offering` measures.
#[derive(Debug, Clone)]
pub struct Options {
    /// Investors, each subscribing one token (1 to [`INVESTORS_MAX`]).
    pub investors: usize,
    /// Concurrent HTTP clients, for the set-up and the subscriptions.
    pub clients: usize,
    /// First port of the benchmark's devnet.
    pub base_port: u16,
    /// The subscription window, in seconds: long enough for every
    /// subscription to be final before it ends.
    pub window_secs: u64,
}

/// Runs the benchmark on a devnet of its own, with its role services, in
/// a temporary folder, and prints one JSON object.
pub fn run(tranche_exe: &Path, options: &Options) -> Result<()> {
    if options.investors == 0 || options.investors > INVESTORS_MAX {
        bail!("investors must be 1 to {INVESTORS_MAX}");
    }
    if options.clients == 0 || options.clients > 1_024 {
        bail!("clients must be 1 to 1024");
    }
    if !(2..=3_600).contains(&options.window_secs) {
        bail!("the window must be 2 to 3600 seconds");
    }
    crate::warn_if_debug();
    let (_tmp, mut devnet) = crate::devnet(tranche_exe, options.base_port, true)?;
    let keys = Keys {
        kyc: devnet.open_key("devnet-kyc")?,
        registry: devnet.open_key("devnet-registry")?,
        appraiser: devnet.open_key("devnet-appraiser")?,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(measure(options, devnet.file(), &keys));
    devnet.stop();
    println!("{}", result?);
    Ok(())
}

/// The keys of the organisations without a service, which sign by hand.
struct Keys {
    kyc: Keypair,
    registry: Keypair,
    appraiser: Keypair,
}

async fn measure(args: &Options, devnet: &DevnetFile, keys: &Keys) -> Result<Value> {
    let n = args.investors;
    let par = args.clients;
    let node = NodeClient::new(&devnet.nodes[0].api, None)?;
    let chain: ChainId = devnet.chain_id.parse()?;
    let password = Path::new(&devnet.password_file);
    let (tsp, bank, issuer) = (
        service(devnet, "tsp")?,
        service(devnet, "bank")?,
        service(devnet, "issuer")?,
    );
    let http = Services::new(par)?;
    let post = reqwest::Method::POST;
    let get = reqwest::Method::GET;
    let (tsp_op, bank_op, approvers) = (
        http.staff(tsp, 0, password).await?,
        http.staff(bank, 0, password).await?,
        [
            http.staff(issuer, 0, password).await?,
            http.staff(issuer, 1, password).await?,
        ],
    );

    // The owner: an ownership credential the registry records on chain.
    eprintln!("setting up: the owner, the asset and {n} investors");
    let owner = Person::new(&keys.kyc)?;
    let owns = tranche_identity::issue_credential(&CredentialRequest {
        id: Some("urn:tranche:bench:ownership".into()),
        issuer: &keys.registry,
        subject: owner.did.clone(),
        kind: CredentialKind::AssetOwnership {
            asset: ASSET.into(),
        },
        valid_from: crate::wall_clock(),
        valid_until: None,
        status: None,
    })?;
    let owner_did: Did = owner.did.parse().map_err(|e| anyhow!("{e:?}"))?;
    let record = Payload::RecordOwnership(RecordOwnership {
        asset: ASSET.parse()?,
        owner: owner_did.clone(),
        credential: Hash(tranche_identity::credential_digest(&owns)?),
    });
    crate::send_in_order(&node, &chain, &keys.registry, vec![record]).await?;
    let investors: Vec<Person> = (0..n)
        .map(|_| Person::new(&keys.kyc))
        .collect::<Result<_>>()?;
    // KYC on chain for every DID, signed by the KYC provider, while the
    // people log in.
    let kyc_claims = {
        let node = node.clone();
        let chain = chain.clone();
        let kyc = keys.kyc.clone();
        let until: Date = "2099-12-31".parse()?;
        let claims: Vec<Payload> = std::iter::once(&owner)
            .chain(&investors)
            .map(|p| {
                let did: Did = p.did.parse().map_err(|e| anyhow!("{e:?}"))?;
                Ok(claim_until(&did, ClaimTopic::KYC, None, until))
            })
            .collect::<Result<_>>()?;
        tokio::spawn(async move { crate::send_in_order(&node, &chain, &kyc, claims).await })
    };

    // Logins at the TSP (KYC and jurisdiction) and the bank (KYC).
    let sessions: Vec<(String, String)> = stream::iter(&investors)
        .map(|p| {
            let http = http.clone();
            async move {
                let at_tsp = http.login(&tsp.api, &p.key, p.credentials.clone()).await?;
                let at_bank = http
                    .login(&bank.api, &p.key, vec![p.credentials[0].clone()])
                    .await?;
                Ok::<_, anyhow::Error>((at_tsp, at_bank))
            }
        })
        .buffered(par)
        .try_collect()
        .await?;
    let mut owner_creds = owner.credentials.clone();
    owner_creds.push(owns.clone());
    let owner_tsp = http.login(&tsp.api, &owner.key, owner_creds).await?;
    let owner_bank = http
        .login(&bank.api, &owner.key, vec![owner.credentials[0].clone()])
        .await?;

    // Wallets bound through the TSP, each with its person's consent; the
    // owner's last, so that theirs on chain means all of them are.
    let binding = |p: &Person| -> Result<Value> {
        Ok(serde_json::to_value(Payload::RegisterWallet(
            Ledger::sign_binding(&chain, &p.key, &p.key),
        ))?)
    };
    let wallets = format!("{}/wallets", tsp.api);
    stream::iter(investors.iter().zip(&sessions))
        .map(|(p, (at_tsp, _))| {
            let (http, wallets, post) = (http.clone(), wallets.clone(), post.clone());
            let body = binding(p);
            async move { http.call(post, &wallets, Some(at_tsp), Some(&body?)).await }
        })
        .buffer_unordered(par)
        .try_collect::<Vec<Value>>()
        .await?;
    http.call(
        post.clone(),
        &wallets,
        Some(&owner_tsp),
        Some(&binding(&owner)?),
    )
    .await?;
    until("the wallets bound", || async {
        Ok(node.wallet(&owner.wallet()).await?.data.did.is_some())
    })
    .await?;

    // The asset, registered by its owner and appraised at its price.
    let price = usd(UNIT_PRICE * n as u128);
    http.call(
        post.clone(),
        &format!("{}/assets", tsp.api),
        Some(&owner_tsp),
        Some(&json!({"asset": ASSET, "kind": "tangible", "price": price,
                     "description": "a building, offered in the benchmark", "credential": owns})),
    )
    .await?;
    until("the registration", || async {
        Ok(node.asset(ASSET).await?.is_some())
    })
    .await?;
    crate::send_in_order(
        &node,
        &chain,
        &keys.appraiser,
        vec![appraisal(ASSET, price)],
    )
    .await?;
    until("the TSP's check of the appraisal", || async {
        let a = http
            .call(
                get.clone(),
                &format!("{}/assets/{ASSET}", tsp.api),
                Some(&tsp_op),
                None,
            )
            .await?;
        Ok(a["within_policy"] == json!(true))
    })
    .await?;

    // Accounts and deposits at the bank: 100.00 USD each, one token's
    // worth; the owner's account last, with a cent, so that its minting
    // final means every one before it is.
    kyc_claims.await??;
    let accounts = format!("{}/accounts", bank.api);
    let deposits = format!("{}/deposits", bank.api);
    stream::iter(investors.iter().zip(&sessions).enumerate())
        .map(|(i, (p, (_, at_bank)))| {
            let (http, post) = (http.clone(), post.clone());
            let (accounts, deposits, bank_op) = (&accounts, &deposits, &bank_op);
            let wallet = p.wallet().to_string();
            async move {
                http.call(
                    post.clone(),
                    accounts,
                    Some(at_bank),
                    Some(&json!({"wallet": wallet})),
                )
                .await?;
                let deposit = json!({"did": p.did, "amount": UNIT_PRICE.to_string(),
                                     "reference": format!("BENCH-{i}")});
                http.call(post, deposits, Some(bank_op), Some(&deposit))
                    .await
            }
        })
        .buffer_unordered(par)
        .try_collect::<Vec<Value>>()
        .await?;
    http.call(
        post.clone(),
        &accounts,
        Some(&owner_bank),
        Some(&json!({"wallet": owner.wallet().to_string()})),
    )
    .await?;
    http.call(
        post.clone(),
        &deposits,
        Some(&bank_op),
        Some(&json!({"did": owner.did, "amount": "1", "reference": "BENCH-OWNER"})),
    )
    .await?;
    until("the deposits minted", || async {
        Ok(balance(&node, &owner.wallet(), CASH).await? == 1)
    })
    .await?;

    // The baseline: each investor sends a cent to the next, straight to the
    // nodes — plain transfers on the same devnet.
    let first_nonce = node.next_nonce(&investors[0].key.public_key()).await?;
    let transfers: Vec<SignedTransaction> = investors
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let to = investors[(i + 1) % n].wallet();
            p.sign(
                &chain,
                first_nonce,
                Payload::Transfer(Transfer {
                    token: CASH.parse()?,
                    to,
                    amount: Units(1),
                    reference: None,
                }),
            )
        })
        .collect::<Result<_>>()?;
    eprintln!("measuring: {n} plain transfers straight to the nodes");
    let apis = devnet.validator_apis();
    let from = node.status().await?.finalized_height + 1;
    let hashes: HashSet<Hash> = transfers.iter().map(SignedTransaction::hash).collect();
    let start = Instant::now();
    let (sent, seen) = tokio::join!(
        submit_to_nodes(&apis, transfers, par),
        finalized(&node, from, hashes)
    );
    sent?;
    let transfer_time = seen?.0.duration_since(start);

    // The offering, opened by the TSP's operator.
    let offer = json!({
        "offering": OFFERING, "asset": ASSET, "token": TOKEN, "unit_price": usd(UNIT_PRICE),
        "amount": n.to_string(), "min_units": "1", "max_units": "1", "soft_cap": "1",
        "window_secs": args.window_secs, "issuer": issuer.org, "bank": bank.org,
        "cash_token": CASH, "issue_date": "2026-01-01", "expiry_date": "2036-12-31",
        "rules": default_rules(),
    });
    let offering_url = format!("{}/offerings/{OFFERING}", tsp.api);
    // The offering as the TSP's operator sees it.
    let tsp_view = || http.call(get.clone(), &offering_url, Some(&tsp_op), None);
    http.call(
        post.clone(),
        &format!("{}/offerings", tsp.api),
        Some(&tsp_op),
        Some(&offer),
    )
    .await?;
    until("the offering open", || async {
        Ok(tsp_view().await?["state"] == json!("open"))
    })
    .await?;

    // Subscriptions through the TSP, each signed by its investor.
    let subscriptions: Vec<SignedTransaction> = investors
        .iter()
        .map(|p| {
            p.sign(
                &chain,
                first_nonce + 1,
                Payload::Subscribe(Subscribe {
                    offering: OFFERING.parse()?,
                    units: Units(1),
                }),
            )
        })
        .collect::<Result<_>>()?;
    eprintln!("measuring: {n} subscriptions through the TSP's API, {par} at a time");
    let from = node.status().await?.finalized_height + 1;
    let hashes: HashSet<Hash> = subscriptions.iter().map(SignedTransaction::hash).collect();
    let subscribe_url = format!("{}/subscriptions", tsp.api);
    let start = Instant::now();
    let relayed = stream::iter(subscriptions.iter().zip(&sessions))
        .map(|(stx, (at_tsp, _))| {
            let (http, post, url) = (http.clone(), post.clone(), &subscribe_url);
            async move {
                let body = serde_json::to_value(stx)?;
                http.call(post, url, Some(at_tsp), Some(&body)).await
            }
        })
        .buffer_unordered(par)
        .try_collect::<Vec<Value>>();
    let (sent, seen) = tokio::join!(relayed, finalized(&node, from, hashes));
    sent?;
    let (last, _) = seen?;
    let subscription_time = last.duration_since(start);

    // The close, the issuance and the payout, each by its service.
    let view = node
        .offering(OFFERING)
        .await?
        .context("the offering is on chain")?
        .data;
    if view.subscriptions != n as u64 {
        bail!("{} subscriptions on chain, not {n}", view.subscriptions);
    }
    let closes = view.terms.closes.0;
    if crate::wall_clock().0 >= closes {
        bail!("the window ended before every subscription was final: raise --window-secs");
    }
    eprintln!(
        "waiting {} ms for the window to end; then the close, two approvals, the issuance and the payout",
        closes - crate::wall_clock().0
    );
    let owner_before = balance(&node, &owner.wallet(), CASH).await?;
    let queued = format!("{}/requests/offering/{OFFERING}", issuer.api);
    until("the issuer's queue", || async {
        match http
            .call(get.clone(), &queued, Some(&approvers[0]), None)
            .await
        {
            Ok(r) => Ok(r["state"] == json!("pending")),
            Err(_) => Ok(false),
        }
    })
    .await?;
    for approver in &approvers {
        http.call(
            post.clone(),
            &format!("{queued}/decisions"),
            Some(approver),
            Some(&json!({"decision": "approve", "reason": "the allocations as closed"})),
        )
        .await?;
    }
    until("the owner paid", || async {
        Ok(balance(&node, &owner.wallet(), CASH).await? > owner_before)
    })
    .await?;
    let paid = balance(&node, &owner.wallet(), CASH).await? - owner_before;
    if paid != UNIT_PRICE * n as u128 {
        bail!("the owner was paid {paid}, not {}", UNIT_PRICE * n as u128);
    }
    let payout_ms = payout_time(&node, from).await?;
    until("the TSP's verification", || async {
        Ok(tsp_view().await?["state"] == json!("released"))
    })
    .await?;
    let o = tsp_view().await?;
    let expected = format!("issued {n} of {n} allocated to {n} subscriptions");
    if o["verified"] != json!(expected) {
        bail!("the TSP verified {}, not {expected:?}", o["verified"]);
    }

    let subscriptions_per_s = crate::per_second(n, subscription_time);
    let transfer_per_s = crate::per_second(n, transfer_time);
    Ok(json!({
        "bench": "offering",
        "investors": n,
        "clients": par,
        "subscriptions_ms": subscription_time.as_millis(),
        "transfers_ms": transfer_time.as_millis(),
        "subscriptions_per_s": subscriptions_per_s,
        "transfer_per_s": transfer_per_s,
        "ratio": crate::ratio(transfer_time, subscription_time),
        "close_to_payout_ms": payout_ms.saturating_sub(closes),
    }))
}

/// The time of the block, at or after `from`, that released the offering's
/// proceeds to the owner.
async fn payout_time(node: &NodeClient, from: u64) -> Result<u64> {
    let tip = node.status().await?.finalized_height;
    for height in from..=tip {
        let Some(block) = node.block(height).await? else {
            continue;
        };
        for (stx, r) in block.block.txs.iter().zip(&block.receipts) {
            if let (Payload::ReleaseProceeds(p), Outcome::Applied) = (&stx.tx.payload, &r.outcome) {
                if p.offering.as_str() == OFFERING {
                    return Ok(block.block.header.time.0);
                }
            }
        }
    }
    bail!("no block from {from} to {tip} released the proceeds")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_options_are_refused_before_anything_starts() {
        let exe = Path::new("/nonexistent/tranche");
        let ok = Options {
            investors: 10,
            clients: 4,
            base_port: 29_000,
            window_secs: 20,
        };
        for bad in [
            Options {
                investors: 0,
                ..ok.clone()
            },
            Options {
                investors: INVESTORS_MAX + 1,
                ..ok.clone()
            },
            Options {
                clients: 0,
                ..ok.clone()
            },
            Options {
                window_secs: 1,
                ..ok.clone()
            },
        ] {
            let e = run(exe, &bad).unwrap_err().to_string();
            assert!(e.contains("must be"), "{e}");
        }
    }

    #[test]
    fn people_sign_with_their_own_keys_and_hold_kyc_and_jurisdiction_credentials() {
        let kyc = Keypair::from_seed(&[9; 32]);
        let p = Person::new(&kyc).unwrap();
        assert_eq!(p.credentials.len(), 2);
        for vc in &p.credentials {
            assert_eq!(vc["credentialSubject"]["id"], json!(p.did));
        }
        let chain: ChainId = "tranche-bench".parse().unwrap();
        let stx = p
            .sign(
                &chain,
                1,
                Payload::Subscribe(Subscribe {
                    offering: OFFERING.parse().unwrap(),
                    units: Units(1),
                }),
            )
            .unwrap();
        assert_eq!(stx.tx.signer, p.key.public_key());
        tranche_crypto::verify_transaction(&stx, &chain).unwrap();
    }
}
