//! Tranche's benchmarks: the matching engine, the ledger, the state as it grows, the whole chain and the role services, each against a baseline run in the same invocation.
//!
//! Machines that run them are noisy, so every benchmark reports a ratio to
//! something measured alongside it, and ends with one JSON line for
//! `docs/BENCHMARKS.md`. Build with `--release` for meaningful numbers.

use std::time::Duration;

pub mod chain;
pub mod custody;
pub mod exchange;
pub mod ledger;
pub mod matching;
pub mod offering;
mod people;
mod preload;
pub mod reconcile;
pub mod state;

/// SplitMix64: a tiny, well-known generator; the workloads only need to be
/// reproducible, not unpredictable.
#[derive(Debug, Clone)]
pub struct SplitMix(pub u64);

impl SplitMix {
    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// Holders among whom a benchmark's transfers go, each with the nonce
/// their next transaction takes.
#[derive(Debug)]
struct Senders<'a> {
    people: &'a [tranche_testkit::world::Person],
    nonces: Vec<u64>,
}

impl<'a> Senders<'a> {
    /// `people`, with their next nonces on `ledger`.
    fn new(people: &'a [tranche_testkit::world::Person], ledger: &tranche_ledger::Ledger) -> Self {
        let nonces = people
            .iter()
            .map(|p| ledger.next_nonce(&p.key.public_key()))
            .collect();
        Senders { people, nonces }
    }

    /// Person `from`'s transfer of `amount` of `token` to person `to`,
    /// signed with `from`'s next nonce.
    fn transfer(
        &mut self,
        from: usize,
        to: usize,
        token: &str,
        amount: u128,
    ) -> tranche_types::SignedTransaction {
        use tranche_types::{Payload, Timestamp, Transfer, Units};
        let payload = Payload::Transfer(Transfer {
            token: tranche_testkit::world::id(token),
            to: self.people[to].wallet(),
            amount: Units(amount),
            reference: None,
        });
        let nonce = self.nonces[from];
        self.nonces[from] += 1;
        tranche_testkit::signed(
            tranche_testkit::world::CHAIN,
            &self.people[from].key,
            nonce,
            Timestamp(u64::MAX),
            payload,
        )
    }
}

/// Signs `payloads` from `key` with its next nonces, submits them in order
/// (at most 60 in flight: a node holds 64 of one signer's), and waits until
/// the chain has taken them all.
async fn send_in_order(
    node: &tranche_api::client::NodeClient,
    chain: &tranche_types::ChainId,
    key: &tranche_crypto::Keypair,
    payloads: Vec<tranche_types::Payload>,
) -> anyhow::Result<()> {
    send_in_order_within(node, chain, key, payloads, 60).await
}

/// [`send_in_order`] with at most `in_flight` submitted and not yet taken
/// (an organisation's key may have 1,024 in a node's mempool).
async fn send_in_order_within(
    node: &tranche_api::client::NodeClient,
    chain: &tranche_types::ChainId,
    key: &tranche_crypto::Keypair,
    payloads: Vec<tranche_types::Payload>,
    in_flight: u64,
) -> anyhow::Result<()> {
    use tranche_types::Transaction;
    let signer = key.public_key();
    let first = node.next_nonce(&signer).await?;
    let total = payloads.len() as u64;
    let mut sent = 0u64;
    let mut payloads = payloads.into_iter();
    loop {
        let done = node.next_nonce(&signer).await? - first;
        if done >= total {
            return Ok(());
        }
        // Each batch valid ten minutes from when it is signed: a long
        // setup outlives any one deadline.
        let valid_until = wall_clock().plus_ms(600_000);
        let mut batch = Vec::new();
        while sent < total && sent < done + in_flight {
            let payload = payloads.next().expect("counted");
            let tx = Transaction {
                chain_id: chain.clone(),
                signer,
                nonce: first + sent,
                valid_until,
                payload,
            };
            batch.push(tranche_crypto::sign_transaction(key, tx)?);
            sent += 1;
        }
        // In parts a node takes: at most BATCH_TXS_MAX transactions and
        // 3 MB of JSON (an issuance of 1,000 allocations is 80 KB).
        let mut rest = batch.as_slice();
        while !rest.is_empty() {
            let mut bytes = 0;
            let n = rest
                .iter()
                .take(tranche_api::BATCH_TXS_MAX)
                .take_while(|tx| {
                    bytes += serde_json::to_vec(tx).map_or(0, |j| j.len());
                    bytes <= 3 << 20
                })
                .count()
                .max(1);
            let (part, after) = rest.split_at(n);
            rest = after;
            let answer = node.submit_batch(part).await?;
            if let Some(e) = answer.results.iter().find_map(|r| r.error.as_ref()) {
                anyhow::bail!("the node refused a setup transaction: {}", e.message);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A devnet of the benchmark's own in a temporary folder (kept while the
/// folder lives), on ports from `base_port`, with or without the role
/// services.
fn devnet(
    tranche_exe: &std::path::Path,
    base_port: u16,
    services: bool,
) -> anyhow::Result<(tempfile::TempDir, tranche_devnet::Devnet)> {
    use anyhow::Context as _;
    let tmp = tempfile::tempdir()?;
    let devnet = tranche_devnet::Devnet::start(
        tranche_exe,
        &tranche_devnet::Options {
            data_dir: tmp.path().join("devnet"),
            base_port,
            services,
        },
    )
    .context("the benchmark's devnet did not start")?;
    Ok((tmp, devnet))
}

/// The wall clock, in milliseconds since 1970.
#[allow(clippy::disallowed_methods)] // a benchmark measures wall time
fn wall_clock() -> tranche_types::Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    tranche_types::Timestamp(u64::try_from(ms).unwrap_or(u64::MAX))
}

/// Operations per second of `ops` done in `d`.
pub fn per_second(ops: usize, d: Duration) -> u64 {
    let ns = d.as_nanos().max(1);
    u64::try_from(ops as u128 * 1_000_000_000 / ns).unwrap_or(u64::MAX)
}

/// How many times faster `engine` was than `baseline`.
#[allow(clippy::float_arithmetic)] // a ratio of durations for the report
pub fn ratio(baseline: Duration, engine: Duration) -> f64 {
    baseline.as_secs_f64() / engine.as_secs_f64().max(1e-12)
}

/// Warns on standard error when the numbers would be meaningless.
fn warn_if_debug() {
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; use --release for meaningful numbers");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_is_reproducible_and_bounded() {
        let (mut a, mut b) = (SplitMix(7), SplitMix(7));
        for _ in 0..1_000 {
            let x = a.below(10);
            assert_eq!(x, b.below(10));
            assert!(x < 10);
        }
        assert_ne!(SplitMix(7).next_u64(), SplitMix(8).next_u64());
    }

    #[test]
    fn rates_and_ratios_are_what_they_say() {
        assert_eq!(per_second(500, Duration::from_millis(250)), 2_000);
        let r = ratio(Duration::from_secs(3), Duration::from_secs(1));
        assert!((2.99..3.01).contains(&r), "{r}");
    }
}
