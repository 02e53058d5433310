//! What the service benchmarks share: people with their own keys and
//! credentials, an HTTP client of the role services that logs them in with
//! presentations, and waiting for the chain.
#![allow(clippy::disallowed_methods)] // a benchmark measures wall time

use anyhow::{anyhow, bail, Context, Result};
use futures_util::{stream, StreamExt as _, TryStreamExt as _};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::path::Path;
#[allow(clippy::disallowed_types)] // a benchmark measures wall time
use std::time::{Duration, Instant};
use tranche_api::client::NodeClient;
use tranche_crypto::rand_core::OsRng;
use tranche_crypto::{sign_transaction, Keypair};
use tranche_devnet::{DevnetFile, ServiceEntry};
use tranche_identity::{CredentialKind, CredentialRequest, DidKey};
use tranche_types::*;

/// The longest any one stage may take before the run gives up.
pub(crate) const STAGE_TIMEOUT: Duration = Duration::from_secs(600);

/// A person with their own key: wallet and DID alike.
pub(crate) struct Person {
    pub(crate) key: Keypair,
    pub(crate) did: String,
    pub(crate) credentials: Vec<Value>,
}

impl Person {
    pub(crate) fn new(kyc: &Keypair) -> Result<Person> {
        let key = Keypair::generate(&mut OsRng);
        let did = DidKey::from_public_key(&key.public_key()).did();
        let issue = |kind| {
            tranche_identity::issue_credential(&CredentialRequest {
                id: None,
                issuer: kyc,
                subject: did.clone(),
                kind,
                valid_from: crate::wall_clock(),
                valid_until: None,
                status: None,
            })
        };
        let credentials = vec![
            issue(CredentialKind::Kyc {
                assurance_level: "high".into(),
            })?,
            issue(CredentialKind::Jurisdiction {
                country: "KR".parse().map_err(|e| anyhow!("{e:?}"))?,
            })?,
        ];
        Ok(Person {
            key,
            did,
            credentials,
        })
    }

    pub(crate) fn wallet(&self) -> WalletAddress {
        self.key.address()
    }

    /// Their transaction with `nonce`, signed offline.
    pub(crate) fn sign(
        &self,
        chain: &ChainId,
        nonce: u64,
        payload: Payload,
    ) -> Result<SignedTransaction> {
        let tx = Transaction {
            chain_id: chain.clone(),
            signer: self.key.public_key(),
            nonce,
            valid_until: crate::wall_clock().plus_ms(600_000),
            payload,
        };
        Ok(sign_transaction(&self.key, tx)?)
    }
}

/// An HTTP client of the role services.
#[derive(Clone)]
pub(crate) struct Services {
    pub(crate) http: reqwest::Client,
}

impl Services {
    /// A client keeping up to `clients` connections to each service.
    pub(crate) fn new(clients: usize) -> Result<Services> {
        Ok(Services {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .pool_max_idle_per_host(clients)
                .build()?,
        })
    }

    /// Sends `body` (or nothing) to `url` with `token`; the JSON answer of a
    /// 2xx, else an error with the service's message.
    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Value> {
        let mut req = self.http.request(method, url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let answer = req.send().await.with_context(|| url.to_string())?;
        let status = answer.status();
        let text = answer.text().await?;
        if !status.is_success() {
            bail!("{url}: {status} {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Logs `key` in to the service at `base` with `credentials`: a
    /// presentation over its challenge. Returns the session's token.
    pub(crate) async fn login(
        &self,
        base: &str,
        key: &Keypair,
        credentials: Vec<Value>,
    ) -> Result<String> {
        let challenge = self
            .call(
                reqwest::Method::POST,
                &format!("{base}/auth/challenge"),
                None,
                None,
            )
            .await?;
        let (Some(nonce), Some(domain)) = (
            challenge["challenge"].as_str(),
            challenge["domain"].as_str(),
        ) else {
            bail!("{base} answered no challenge: {challenge}");
        };
        let vp = tranche_identity::present(key, credentials, nonce, domain, crate::wall_clock())?;
        let session = self
            .call(
                reqwest::Method::POST,
                &format!("{base}/auth/session"),
                None,
                Some(&json!({"challenge": nonce, "presentation": vp})),
            )
            .await?;
        session["token"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("{base} answered no session: {session}"))
    }

    /// Logs in the `n`-th staff member of `service`.
    pub(crate) async fn staff(
        &self,
        service: &ServiceEntry,
        n: usize,
        password: &Path,
    ) -> Result<String> {
        let staff = service
            .staff
            .get(n)
            .with_context(|| format!("the devnet's {} service has no staff {n}", service.role))?;
        let key = tranche_keystore::open_key_file(Path::new(&staff.key_file), Some(password))?;
        let credential: Value = serde_json::from_str(&std::fs::read_to_string(&staff.credential)?)?;
        self.login(&service.api, &key, vec![credential]).await
    }
}

pub(crate) fn service<'a>(devnet: &'a DevnetFile, role: &str) -> Result<&'a ServiceEntry> {
    devnet
        .services
        .iter()
        .find(|s| s.role == role)
        .with_context(|| format!("the devnet runs no {role} service"))
}

/// Polls `check` every 100 ms until it holds, for at most [`STAGE_TIMEOUT`].
pub(crate) async fn until<F, Fut>(what: &str, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let start = Instant::now();
    while !check().await? {
        if start.elapsed() > STAGE_TIMEOUT {
            bail!("{what} did not happen in {STAGE_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// `person`'s balance of `token`.
pub(crate) async fn balance(
    node: &NodeClient,
    wallet: &WalletAddress,
    token: &str,
) -> Result<u128> {
    Ok(node
        .wallet(wallet)
        .await?
        .data
        .balances
        .iter()
        .find(|b| b.token.as_str() == token)
        .map_or(0, |b| b.units.0))
}

/// Watches finalized blocks from `from` until every transaction of
/// `hashes` is final and applied; returns when the last was seen and the
/// height after it.
pub(crate) async fn finalized(
    node: &NodeClient,
    from: u64,
    mut hashes: HashSet<Hash>,
) -> Result<(Instant, u64)> {
    let start = Instant::now();
    let mut height = from;
    let mut last = Instant::now();
    while !hashes.is_empty() {
        if start.elapsed() > STAGE_TIMEOUT {
            bail!(
                "{} transactions not final in {STAGE_TIMEOUT:?}",
                hashes.len()
            );
        }
        let Some(block) = node.block(height).await? else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        for r in &block.receipts {
            if hashes.remove(&r.tx_hash) {
                if let Outcome::Rejected(why) = &r.outcome {
                    bail!("a measured transaction was rejected: {why}");
                }
                last = Instant::now();
            }
        }
        height += 1;
    }
    Ok((last, height))
}

/// Submits `txs` straight to the nodes, `batch` at a time over `clients`
/// connections.
pub(crate) async fn submit_to_nodes(
    apis: &[String],
    txs: Vec<SignedTransaction>,
    clients: usize,
) -> Result<()> {
    let nodes: Vec<NodeClient> = apis
        .iter()
        .map(|a| NodeClient::new(a, None))
        .collect::<Result<_, _>>()?;
    let batches: Vec<Vec<SignedTransaction>> = txs.chunks(50).map(<[_]>::to_vec).collect();
    stream::iter(batches.into_iter().enumerate())
        .map(|(i, b)| {
            let node = nodes[i % nodes.len()].clone();
            async move {
                let answer = node.submit_batch(&b).await?;
                if answer.refused != 0 {
                    bail!("the node refused {} benchmark transfers", answer.refused);
                }
                Ok(())
            }
        })
        .buffer_unordered(clients.min(16))
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}
