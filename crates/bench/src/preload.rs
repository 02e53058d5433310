//! Holders put on a devnet's chain before a benchmark measures it, through
//! the chain like any others: so that what is measured runs against a
//! state the size of a real market, not an empty one.
//!
//! Each holder has a key of their own, its wallet bound to its own DID by
//! the TSP with the holder's consent, a KYC claim from the KYC provider,
//! and 1,000 units of a token of 1,000 holders (one asset, ownership
//! record, appraisal, issuance request and execution per token). The TSP's
//! bindings and the KYC claims go in side by side, each organisation with
//! up to 1,000 transactions in flight (a node holds 1,024 of an
//! organisation's key); the tokens follow, stage by stage.
#![allow(clippy::disallowed_methods)] // a benchmark reads the clock by nature

use anyhow::{bail, Result};
#[allow(clippy::disallowed_types)] // a benchmark measures wall time
use std::time::Instant;
use tranche_api::client::NodeClient;
use tranche_crypto::Keypair;
use tranche_devnet::Devnet;
use tranche_ledger::Ledger;
use tranche_testkit::world::{
    appraisal, claim_until, execution, issuance_request, record_ownership, register_asset, usd,
};
use tranche_types::*;

/// Holders of each preloaded token.
pub(crate) const PER_TOKEN: usize = 1_000;
/// Units each preloaded holder holds.
const UNITS: u128 = 1_000;
/// Transactions of one organisation in flight at once.
const IN_FLIGHT: u64 = 1_000;

/// Holder `n`'s key: derived from `n`, so the run needs no list of keys and
/// a rerun the same wallets.
fn holder(n: usize) -> Keypair {
    let mut seed = [0x70u8; 32];
    seed[..8].copy_from_slice(&(n as u64).to_le_bytes());
    Keypair::from_seed(&seed)
}

/// Puts `holders` holders (a multiple of [`PER_TOKEN`]) on `devnet`'s
/// chain, in tokens `T-HOLD-0`, `T-HOLD-1`, ..., the assets owned by
/// `owner`; returns when every token is issued.
pub(crate) async fn holders(
    devnet: &Devnet,
    node: &NodeClient,
    chain: &ChainId,
    holders: usize,
    owner: &Did,
) -> Result<()> {
    if !holders.is_multiple_of(PER_TOKEN) {
        bail!("holders must be a multiple of {PER_TOKEN}");
    }
    let started = Instant::now();
    let tokens = holders / PER_TOKEN;
    let [tsp, kyc, registry, appraiser, issuer] = [
        "devnet-tsp",
        "devnet-kyc",
        "devnet-registry",
        "devnet-appraiser",
        "devnet-issuer",
    ]
    .map(|o| devnet.open_key(o));
    let (tsp, kyc, registry, appraiser, issuer) = (tsp?, kyc?, registry?, appraiser?, issuer?);
    eprintln!("preloading {holders} holders: keys and consents");
    // Each holder's binding (two signatures of theirs) and claim, made on
    // every core: a million holders are two million signatures.
    let until = "2099-12-31".parse()?;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let per_thread = holders.div_ceil(threads);
    let made: Vec<Vec<(Payload, (Payload, WalletAddress))>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    (t * per_thread..((t + 1) * per_thread).min(holders))
                        .map(|n| {
                            let k = holder(n);
                            let did = Ledger::did_of_key(&k.public_key());
                            (
                                Payload::RegisterWallet(Ledger::sign_binding(chain, &k, &k)),
                                (claim_until(&did, ClaimTopic::KYC, None, until), k.address()),
                            )
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a key-making thread panicked"))
            .collect()
    });
    let (bindings, (claims, wallets)): (Vec<Payload>, (Vec<Payload>, Vec<WalletAddress>)) =
        made.into_iter().flatten().unzip();
    eprintln!(
        "preloading {holders} holders: bindings and KYC claims ({:.0?} so far)",
        started.elapsed()
    );
    let (a, b) = tokio::join!(
        crate::send_in_order_within(node, chain, &tsp, bindings, IN_FLIGHT),
        crate::send_in_order_within(node, chain, &kyc, claims, IN_FLIGHT),
    );
    a?;
    b?;
    eprintln!(
        "preloading {holders} holders: {tokens} tokens ({:.0?} so far)",
        started.elapsed()
    );
    // The asset is priced so that its price over the unit price (100 USD)
    // is exactly the number of units issued (F5-2).
    let amount = UNITS * PER_TOKEN as u128;
    let price = usd(amount * 10_000);
    let names = |t: usize| (format!("A-HOLD-{t}"), format!("T-HOLD-{t}"));
    let stage = |f: &dyn Fn(usize) -> Payload| (0..tokens).map(f).collect::<Vec<_>>();
    crate::send_in_order_within(
        node,
        chain,
        &registry,
        stage(&|t| record_ownership(&names(t).0, owner.clone())),
        IN_FLIGHT,
    )
    .await?;
    crate::send_in_order_within(
        node,
        chain,
        &tsp,
        stage(&|t| register_asset(&names(t).0, owner.clone(), price.clone())),
        IN_FLIGHT,
    )
    .await?;
    crate::send_in_order_within(
        node,
        chain,
        &appraiser,
        stage(&|t| appraisal(&names(t).0, price.clone())),
        IN_FLIGHT,
    )
    .await?;
    let requests: Vec<RequestIssuance> = (0..tokens)
        .map(|t| {
            let (asset, token) = names(t);
            let allocations: Vec<(WalletAddress, u128)> = wallets
                [t * PER_TOKEN..(t + 1) * PER_TOKEN]
                .iter()
                .map(|w| (*w, UNITS))
                .collect();
            issuance_request(
                &format!("R-HOLD-{t}"),
                &asset,
                &token,
                "devnet-issuer",
                &allocations,
                amount,
            )
        })
        .collect();
    let executions: Vec<Payload> = requests.iter().map(execution).collect();
    let ids: Vec<RequestId> = requests.iter().map(|r| r.request.clone()).collect();
    let requests = requests.into_iter().map(Payload::RequestIssuance).collect();
    crate::send_in_order_within(node, chain, &tsp, requests, IN_FLIGHT).await?;
    crate::send_in_order_within(node, chain, &issuer, executions, IN_FLIGHT).await?;
    // A nonce is taken by a transaction rejected as by one applied: each
    // token is checked issued in full, which also says every holder was
    // bound and KYC'd.
    for request in ids {
        let issued = node
            .issuance(request.as_str())
            .await?
            .and_then(|at| at.data.check)
            .and_then(|c| c.issued);
        if issued != Some(Units(amount)) {
            bail!("preloaded token {request} was not issued: {issued:?} of {amount}");
        }
    }
    eprintln!(
        "preloaded {holders} holders in {tokens} tokens in {:.1?}",
        started.elapsed()
    );
    Ok(())
}
