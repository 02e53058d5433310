//! A typed client of the node API: every call answers the `node` module's
//! types, never raw JSON. Async, over rustls, trusting a private CA if given;
//! each request has a timeout, and calls that are safe to repeat (every
//! read, and submissions, which a node answers alike when repeated) are
//! retried on transport failures. Given several nodes, a client moves on
//! to the next as soon as one cannot be reached, and stays there.
//! [`BlockingNodeClient`] wraps it for command-line tools and threads.

use crate::block_binary::BLOCK_MEDIA_TYPE;
use crate::node::{
    AmlPolicyView, AssetView, At, BatchAnswer, BlockRecord, IssuanceView, NextNonce, OfferingView,
    OrganisationView, OwnershipView, PolicyView, ProofView, RevocationView, Status, Submitted,
    TokenView, TransactionRecord, TransferCheck, Transfers, Validators, WalletView,
};
pub use crate::stream::{EventStream, NodeEvent};
use crate::{ErrorBody, BATCH_TXS_MAX};
use serde::de::DeserializeOwned;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tranche_types::{Hash, PublicKey, SignedTransaction, TokenId, Units, WalletAddress};

/// How many times a call safe to repeat is tried when the node cannot be reached.
pub const ATTEMPTS_MAX: u32 = 3;
/// How long one request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The first pause before a retry; each next one is twice as long.
const RETRY_PAUSE: Duration = Duration::from_millis(200);
/// The most nodes one client may be given.
pub const NODES_MAX: usize = 16;
/// How long a client given several nodes waits for one to accept a
/// connection before it moves on to the next: a dead node costs at most this.
pub const FAILOVER_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a client of one node waits for it to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not an http:// or https:// URL.
    #[error("{0:?} is not an http:// or https:// URL")]
    BadUrl(String),
    /// The CA certificate is not PEM.
    #[error("the CA certificate is not a PEM certificate: {0}")]
    BadCaCertificate(String),
    /// The node could not be reached or broke off.
    #[error("cannot reach the node at {url}: {reason}")]
    Unreachable {
        /// The node's base URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The node answered with an error.
    #[error("the node refused ({status} {}): {}", .body.code, .body.message)]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The node's stable code and message.
        body: ErrorBody,
    },
    /// The node answered something this client does not understand.
    #[error("the node's answer to {path} is not what the API describes: {reason}")]
    Unexpected {
        /// The path asked.
        path: String,
        /// What was wrong with it.
        reason: String,
    },
    /// A batch larger than the node takes.
    #[error("a batch holds at most {BATCH_TXS_MAX} transactions, not {0}")]
    BatchTooLarge(usize),
}

impl ClientError {
    /// Whether the node said it has no such thing.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ClientError::Refused { status: 404, .. })
    }
}

/// Which record a proof is asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProofOf {
    /// A wallet's balance of a token.
    Balance {
        /// The token.
        token: String,
        /// The wallet (tr1...).
        wallet: String,
    },
    /// An issuance request and what came of it.
    Issuance(String),
    /// A revocation request and what came of it.
    Revocation(String),
    /// A claim an issuer made about a DID on a topic.
    Claim {
        /// The DID.
        did: String,
        /// The topic's number.
        topic: u16,
        /// The claim issuer.
        issuer: String,
    },
    /// A custodial wallet's custody binding.
    Custody(String),
}

impl ProofOf {
    /// The request's path.
    pub fn path(&self) -> String {
        match self {
            ProofOf::Balance { token, wallet } => {
                format!("/proofs/balances/{}/{}", segment(token), segment(wallet))
            }
            ProofOf::Issuance(r) => format!("/proofs/issuances/{}", segment(r)),
            ProofOf::Revocation(r) => format!("/proofs/revocations/{}", segment(r)),
            ProofOf::Claim { did, topic, issuer } => format!(
                "/proofs/claims/{}/{topic}/{}",
                segment(did),
                segment(issuer)
            ),
            ProofOf::Custody(w) => format!("/proofs/custody/{}", segment(w)),
        }
    }
}

/// Filters for transfer history and the live stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransferFilter {
    /// Only this token's transfers.
    pub token: Option<TokenId>,
    /// Only transfers from or to this wallet.
    pub wallet: Option<WalletAddress>,
    /// Blocks from this time on, in ms since 1970.
    pub since: Option<u64>,
    /// Blocks before this time, in ms since 1970.
    pub until: Option<u64>,
    /// At most this many (history only).
    pub limit: Option<usize>,
}

impl TransferFilter {
    fn query(&self) -> String {
        let mut q = Vec::new();
        if let Some(t) = &self.token {
            q.push(format!("token={}", segment(t.as_str())));
        }
        if let Some(w) = &self.wallet {
            q.push(format!("wallet={w}"));
        }
        if let Some(s) = self.since {
            q.push(format!("since={s}"));
        }
        if let Some(u) = self.until {
            q.push(format!("until={u}"));
        }
        if let Some(l) = self.limit {
            q.push(format!("limit={l}"));
        }
        q.join("&")
    }
}

/// `text` percent-encoded for one path segment or query value.
pub fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An async client of one node, or of several that it fails over between.
/// Clones share which node is in use.
#[derive(Clone, Debug)]
pub struct NodeClient {
    /// The nodes' base URLs.
    bases: Arc<[String]>,
    /// The one calls go to, until it cannot be reached.
    current: Arc<AtomicUsize>,
    http: reqwest::Client,
    /// The same, without an overall timeout, for the live stream.
    stream: reqwest::Client,
}

impl NodeClient {
    /// A client of the node at `url`, trusting `ca_cert_pem` (a private
    /// network's CA) besides the system's roots. `url` may name several
    /// nodes, separated by commas (at most [`NODES_MAX`]): calls go to the
    /// first, and move on to the next when one cannot be reached within
    /// [`FAILOVER_CONNECT_TIMEOUT`].
    pub fn new(url: &str, ca_cert_pem: Option<&[u8]>) -> Result<NodeClient, ClientError> {
        let bases: Vec<String> = url
            .split(',')
            .map(|u| u.trim().trim_end_matches('/').to_string())
            .collect();
        if bases.len() > NODES_MAX
            || bases
                .iter()
                .any(|b| !(b.starts_with("http://") || b.starts_with("https://")))
        {
            return Err(ClientError::BadUrl(url.to_string()));
        }
        let connect = if bases.len() > 1 {
            FAILOVER_CONNECT_TIMEOUT
        } else {
            CONNECT_TIMEOUT
        };
        let build = |timeout: Option<Duration>| {
            let mut b = reqwest::Client::builder().connect_timeout(connect);
            if let Some(t) = timeout {
                b = b.timeout(t);
            }
            if let Some(pem) = ca_cert_pem {
                let certs = reqwest::Certificate::from_pem_bundle(pem)
                    .map_err(|e| ClientError::BadCaCertificate(e.to_string()))?;
                if certs.is_empty() {
                    return Err(ClientError::BadCaCertificate(
                        "it holds no PEM certificate".into(),
                    ));
                }
                for cert in certs {
                    b = b.add_root_certificate(cert);
                }
            }
            b.build()
                .map_err(|e| ClientError::BadCaCertificate(e.to_string()))
        };
        Ok(NodeClient {
            http: build(Some(REQUEST_TIMEOUT))?,
            stream: build(None)?,
            bases: bases.into(),
            current: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// The base URL of the node calls go to now.
    pub fn base(&self) -> &str {
        &self.bases[self.current.load(Ordering::Relaxed) % self.bases.len()]
    }

    /// Every node this client may call.
    pub fn bases(&self) -> &[String] {
        &self.bases
    }

    fn unreachable(&self, e: &reqwest::Error) -> ClientError {
        ClientError::Unreachable {
            url: self.base().to_string(),
            reason: e.to_string(),
        }
    }

    /// Moves calls on from node `from` to the next, unless another call
    /// has moved them already. True if there is another node.
    fn fail_over(&self, from: usize) -> bool {
        let n = self.bases.len();
        if n < 2 {
            return false;
        }
        let _ = self.current.compare_exchange(
            from,
            (from + 1) % n,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        true
    }

    async fn answer<T: DeserializeOwned>(
        &self,
        path: &str,
        response: reqwest::Response,
    ) -> Result<T, ClientError> {
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| self.unreachable(&e))?;
        self.decode(path, status, &bytes)
    }

    fn decode<T: DeserializeOwned>(
        &self,
        path: &str,
        status: u16,
        bytes: &[u8],
    ) -> Result<T, ClientError> {
        if (200..300).contains(&status) {
            return serde_json::from_slice(bytes).map_err(|e| ClientError::Unexpected {
                path: path.to_string(),
                reason: e.to_string(),
            });
        }
        match serde_json::from_slice::<ErrorBody>(bytes) {
            Ok(body) => Err(ClientError::Refused { status, body }),
            Err(_) => Err(ClientError::Unexpected {
                path: path.to_string(),
                reason: format!("status {status}: {}", String::from_utf8_lossy(bytes)),
            }),
        }
    }

    /// Sends a request safe to repeat (`make` builds it for a node's base
    /// URL), retrying it when the node cannot be reached or breaks off
    /// before answering in full (not when it answers): on the next node at
    /// once if there are several, after a pause when every node was tried.
    async fn repeatable<T: DeserializeOwned>(
        &self,
        path: &str,
        make: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let (status, bytes) = self.repeatable_raw(make).await?;
        self.decode(path, status, &bytes)
    }

    /// [`Self::repeatable`]'s sending and retrying: the status and body of
    /// the first answer.
    async fn repeatable_raw(
        &self,
        make: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> Result<(u16, bytes::Bytes), ClientError> {
        let mut pause = RETRY_PAUSE;
        let nodes = u32::try_from(self.bases.len()).unwrap_or(u32::MAX);
        let mut attempt = 1;
        loop {
            let at = self.current.load(Ordering::Relaxed) % self.bases.len();
            let sent = async {
                let response = make(&self.bases[at]).send().await?;
                let status = response.status().as_u16();
                Ok::<_, reqwest::Error>((status, response.bytes().await?))
            };
            match sent.await {
                Ok(answer) => return Ok(answer),
                Err(e) if attempt >= ATTEMPTS_MAX * nodes => {
                    return Err(ClientError::Unreachable {
                        url: self.bases[at].clone(),
                        reason: e.to_string(),
                    })
                }
                Err(_) => {
                    if !self.fail_over(at) || attempt % nodes == 0 {
                        tokio::time::sleep(pause).await;
                        pause *= 2;
                    }
                    attempt += 1;
                }
            }
        }
    }

    /// GETs the block record at `path` in its binary form (JSON costs a
    /// follower several times as much); `None` if the node has none.
    async fn find_block(&self, path: &str) -> Result<Option<BlockRecord>, ClientError> {
        let (status, bytes) = self
            .repeatable_raw(|base| {
                self.http
                    .get(format!("{base}{path}"))
                    .header(reqwest::header::ACCEPT, BLOCK_MEDIA_TYPE)
            })
            .await?;
        if !(200..300).contains(&status) {
            return match self.decode::<BlockRecord>(path, status, &bytes) {
                Err(e) if e.is_not_found() => Ok(None),
                other => other.map(Some),
            };
        }
        BlockRecord::from_binary(&bytes)
            .map(Some)
            .map_err(|e| ClientError::Unexpected {
                path: path.to_string(),
                reason: e.to_string(),
            })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.repeatable(path, |base| self.http.get(format!("{base}{path}")))
            .await
    }

    /// GETs `path`; `None` if the node has no such thing.
    async fn find<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>, ClientError> {
        match self.get(path).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The node, its chain and its last finalized block.
    pub async fn status(&self) -> Result<Status, ClientError> {
        self.get("/status").await
    }

    /// Submits a signed transaction.
    pub async fn submit(&self, stx: &SignedTransaction) -> Result<Submitted, ClientError> {
        self.repeatable("/transactions", |base| {
            self.http.post(format!("{base}/transactions")).json(stx)
        })
        .await
    }

    /// Submits up to [`BATCH_TXS_MAX`] transactions at once; one answer each.
    pub async fn submit_batch(
        &self,
        txs: &[SignedTransaction],
    ) -> Result<BatchAnswer, ClientError> {
        if txs.len() > BATCH_TXS_MAX {
            return Err(ClientError::BatchTooLarge(txs.len()));
        }
        let answer: BatchAnswer = self
            .repeatable("/transactions/batch", |base| {
                self.http
                    .post(format!("{base}/transactions/batch"))
                    .json(txs)
            })
            .await?;
        if answer.results.len() != txs.len() {
            return Err(ClientError::Unexpected {
                path: "/transactions/batch".into(),
                reason: format!(
                    "{} results for {} transactions",
                    answer.results.len(),
                    txs.len()
                ),
            });
        }
        Ok(answer)
    }

    /// A finalized transaction, or `None` until it is.
    pub async fn transaction(&self, hash: &Hash) -> Result<Option<TransactionRecord>, ClientError> {
        self.find(&format!("/transactions/{hash}")).await
    }

    /// Waits until the transaction is finalized (polling every 100 ms).
    pub async fn wait(
        &self,
        hash: &Hash,
        timeout: Duration,
    ) -> Result<Option<TransactionRecord>, ClientError> {
        let step = Duration::from_millis(100);
        let mut waited = Duration::ZERO;
        loop {
            if let Some(found) = self.transaction(hash).await? {
                return Ok(Some(found));
            }
            if waited >= timeout {
                return Ok(None);
            }
            tokio::time::sleep(step).await;
            waited += step;
        }
    }

    /// The finalized block at `height`, or `None`.
    pub async fn block(&self, height: u64) -> Result<Option<BlockRecord>, ClientError> {
        self.find_block(&format!("/blocks/{height}")).await
    }

    /// The finalized block at `height`, waiting up to `wait` (at most 10 s)
    /// for it to be finalized; `None` if it was not by then.
    pub async fn block_waiting(
        &self,
        height: u64,
        wait: Duration,
    ) -> Result<Option<BlockRecord>, ClientError> {
        let ms = wait.as_millis().min(10_000);
        self.find_block(&format!("/blocks/{height}?wait_ms={ms}"))
            .await
    }

    /// The last finalized block, or `None` before the first.
    pub async fn latest_block(&self) -> Result<Option<BlockRecord>, ClientError> {
        self.find_block("/blocks/latest").await
    }

    /// The nonce `signer`'s next transaction must carry.
    pub async fn next_nonce(&self, signer: &PublicKey) -> Result<u64, ClientError> {
        let at: At<NextNonce> = self.get(&format!("/signers/{signer}/nonce")).await?;
        Ok(at.data.next_nonce)
    }

    /// The committee, validators and equivocations.
    pub async fn validators(&self) -> Result<At<Validators>, ClientError> {
        self.get("/validators").await
    }

    /// Who a registry attested as `asset`'s owner, or `None`.
    pub async fn ownership(&self, asset: &str) -> Result<Option<At<OwnershipView>>, ClientError> {
        self.find(&format!("/ownerships/{}", segment(asset))).await
    }

    /// The network's policy.
    pub async fn policy(&self) -> Result<At<PolicyView>, ClientError> {
        self.get("/policy").await
    }

    /// The organisation signing with `key`, or `None`.
    pub async fn organisation_of_key(
        &self,
        key: &tranche_types::PublicKey,
    ) -> Result<Option<At<OrganisationView>>, ClientError> {
        self.find(&format!("/keys/{}/organisation", key.to_hex()))
            .await
    }

    /// The AML policy's versions and the one in force (F6-1).
    pub async fn aml_policy(&self) -> Result<At<AmlPolicyView>, ClientError> {
        self.get("/aml-policy").await
    }

    /// An organisation, or `None`.
    pub async fn organisation(
        &self,
        org: &str,
    ) -> Result<Option<At<OrganisationView>>, ClientError> {
        self.find(&format!("/organisations/{}", segment(org))).await
    }

    /// A wallet.
    pub async fn wallet(&self, address: &WalletAddress) -> Result<At<WalletView>, ClientError> {
        self.get(&format!("/wallets/{address}")).await
    }

    /// Whether a holder's transfer of `amount` of `token` from `from` to
    /// `to` would pass every rule of the ledger now.
    pub async fn check_transfer(
        &self,
        token: &TokenId,
        from: &WalletAddress,
        to: &WalletAddress,
        amount: Units,
    ) -> Result<At<TransferCheck>, ClientError> {
        self.get(&format!(
            "/checks/transfer?token={}&from={from}&to={to}&amount={amount}",
            segment(token.as_str())
        ))
        .await
    }

    /// Whether the rules of `token` that concern `wallet` alone let it give
    /// (`receive` false) or receive `amount`, whoever the other side is.
    pub async fn check_holder(
        &self,
        token: &TokenId,
        wallet: &WalletAddress,
        receive: bool,
        amount: Units,
    ) -> Result<At<TransferCheck>, ClientError> {
        self.get(&format!(
            "/checks/holder?token={}&wallet={wallet}&side={}&amount={amount}",
            segment(token.as_str()),
            if receive { "receive" } else { "send" }
        ))
        .await
    }

    /// A token, or `None`.
    pub async fn token(&self, token: &str) -> Result<Option<At<TokenView>>, ClientError> {
        self.find(&format!("/tokens/{}", segment(token))).await
    }

    /// A token's rules over time, trusted issuers and approvals, or `None`.
    pub async fn token_rules(
        &self,
        token: &str,
    ) -> Result<Option<At<crate::token_admin::TokenRulesView>>, ClientError> {
        self.find(&format!("/tokens/{}/rules", segment(token)))
            .await
    }

    /// A token's documents and their history, or `None`.
    pub async fn token_documents(
        &self,
        token: &str,
    ) -> Result<Option<At<crate::token_admin::DocumentsView>>, ClientError> {
        self.find(&format!("/tokens/{}/documents", segment(token)))
            .await
    }

    /// A settlement instruction, or `None`.
    pub async fn instruction(
        &self,
        instruction: &str,
    ) -> Result<Option<At<crate::token_admin::InstructionView>>, ClientError> {
        self.find(&format!("/instructions/{}", segment(instruction)))
            .await
    }

    /// A hold, or `None`.
    pub async fn hold(
        &self,
        hold: &str,
    ) -> Result<Option<At<crate::token_admin::HoldView>>, ClientError> {
        self.find(&format!("/holds/{}", segment(hold))).await
    }

    /// A ballot and its tally (with `wallet`'s vote), or `None`.
    pub async fn ballot(
        &self,
        ballot: &str,
        wallet: Option<&WalletAddress>,
    ) -> Result<Option<At<crate::token_admin::BallotView>>, ClientError> {
        let query = wallet.map_or(String::new(), |w| format!("?wallet={w}"));
        self.find(&format!("/ballots/{}{query}", segment(ballot)))
            .await
    }

    /// An asset, or `None`.
    pub async fn asset(&self, asset: &str) -> Result<Option<At<AssetView>>, ClientError> {
        self.find(&format!("/assets/{}", segment(asset))).await
    }

    /// An issuance request and its check, or `None`.
    pub async fn issuance(&self, request: &str) -> Result<Option<At<IssuanceView>>, ClientError> {
        self.find(&format!("/issuances/{}", segment(request))).await
    }

    /// An offering, or `None`.
    pub async fn offering(&self, offering: &str) -> Result<Option<At<OfferingView>>, ClientError> {
        self.find(&format!("/offerings/{}", segment(offering)))
            .await
    }

    /// An offering with every one of its subscriptions, read page by page,
    /// or `None`. The pages are read at the heights they are answered at:
    /// once an offering is closed its subscriptions and allocations no
    /// longer change, so a closed offering reads whole and consistent.
    pub async fn offering_in_full(
        &self,
        offering: &str,
    ) -> Result<Option<At<OfferingView>>, ClientError> {
        let Some(mut whole) = self.offering(offering).await? else {
            return Ok(None);
        };
        while (whole.data.entries.len() as u64) < whole.data.subscriptions {
            let after = whole.data.entries.len();
            let page: Option<At<OfferingView>> = self
                .find(&format!("/offerings/{}?after={after}", segment(offering)))
                .await?;
            match page {
                Some(p) if !p.data.entries.is_empty() => whole.data.entries.extend(p.data.entries),
                _ => break,
            }
        }
        Ok(Some(whole))
    }

    /// A revocation request and its check, or `None`.
    pub async fn revocation(
        &self,
        request: &str,
    ) -> Result<Option<At<RevocationView>>, ClientError> {
        self.find(&format!("/revocations/{}", segment(request)))
            .await
    }

    /// A proof of one record of the last finalized state.
    pub async fn proof(&self, of: &ProofOf) -> Result<Option<At<ProofView>>, ClientError> {
        self.find(&of.path()).await
    }

    /// Finalized transfers matching `filter`, oldest first.
    pub async fn transfers(&self, filter: &TransferFilter) -> Result<At<Transfers>, ClientError> {
        self.get(&format!("/transfers?{}", filter.query())).await
    }

    /// Finalized transfers matching `filter`'s token and wallet, live.
    pub async fn events(&self, filter: &TransferFilter) -> Result<EventStream, ClientError> {
        let live = TransferFilter {
            token: filter.token.clone(),
            wallet: filter.wallet,
            ..TransferFilter::default()
        };
        let path = format!("/events?{}", live.query());
        let response = self
            .stream
            .get(format!("{}{path}", self.base()))
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        if !response.status().is_success() {
            return Err(self
                .answer::<serde_json::Value>(&path, response)
                .await
                .err()
                .unwrap_or(ClientError::Unexpected {
                    path,
                    reason: "an error status with a success body".into(),
                }));
        }
        Ok(EventStream::new(response, self.base().to_string()))
    }
}

/// [`NodeClient`] for code without an async runtime: each call runs on a
/// runtime of its own.
#[derive(Debug)]
pub struct BlockingNodeClient {
    client: NodeClient,
    runtime: tokio::runtime::Runtime,
}

impl BlockingNodeClient {
    /// A blocking client of the node at `url` (see [`NodeClient::new`]).
    pub fn new(url: &str, ca_cert_pem: Option<&[u8]>) -> Result<Self, ClientError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ClientError::Unreachable {
                url: url.to_string(),
                reason: format!("no runtime for the client: {e}"),
            })?;
        Ok(BlockingNodeClient {
            client: NodeClient::new(url, ca_cert_pem)?,
            runtime,
        })
    }

    /// The async client inside.
    pub fn inner(&self) -> &NodeClient {
        &self.client
    }

    /// Runs `f` on the async client to completion.
    pub fn run<'a, F, T>(&'a self, f: impl FnOnce(&'a NodeClient) -> F) -> T
    where
        F: std::future::Future<Output = T> + 'a,
    {
        self.runtime.block_on(f(&self.client))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_and_segments_are_encoded() {
        let f = TransferFilter {
            token: Some("T 1/x".parse().unwrap_or_else(|_| "T-1".parse().unwrap())),
            since: Some(5),
            limit: Some(10),
            ..TransferFilter::default()
        };
        let q = f.query();
        assert!(q.contains("since=5") && q.contains("limit=10"), "{q}");
        assert_eq!(segment("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn urls_other_than_http_are_refused() {
        assert!(matches!(
            NodeClient::new("ftp://x", None),
            Err(ClientError::BadUrl(_))
        ));
        assert!(matches!(
            NodeClient::new("http://127.0.0.1:1", Some(b"not pem")),
            Err(ClientError::BadCaCertificate(_))
        ));
    }

    #[test]
    fn an_unreachable_node_is_retried_then_named() {
        let client = BlockingNodeClient::new("http://127.0.0.1:9", None).unwrap();
        match client.run(|c| c.status()) {
            Err(ClientError::Unreachable { url, .. }) => assert_eq!(url, "http://127.0.0.1:9"),
            other => panic!("expected unreachable, got {other:?}"),
        }
    }
}
