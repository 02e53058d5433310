//! The client side of the node API: send transactions to a node and read
//! the chain back (`tranche send`, `submit`, `query`, `watch`).

use super::tx::{decode_signed, parse_duration_ms, read_payload, TX_FILE_BYTES_MAX};
use super::{now, open_key, print_json, KeyArgs};
use crate::keystore::read_bounded;
use crate::Ctx;
use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::Value;
use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tranche_crypto::sign_transaction;
use tranche_types::{ChainId, Hash, SignedTransaction, Transaction};

/// The node to talk to.
#[derive(Debug, Args)]
pub struct NodeUrl {
    /// The node API's base URL (`tranche devnet` prints them).
    #[arg(
        long,
        global = true,
        env = "TRANCHE_NODE",
        default_value = "http://127.0.0.1:27100"
    )]
    pub node: String,
    /// Trust this CA certificate (PEM) for an https:// node, e.g. a private
    /// network's own CA; the system's roots are trusted besides.
    #[arg(long, global = true, env = "TRANCHE_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
}

impl NodeUrl {
    /// A client of this node.
    pub fn client(&self) -> Result<Client> {
        Client::with_ca(&self.node, self.ca_cert.as_deref())
    }
}

/// A blocking client of one node.
pub struct Client {
    /// The node's base URL.
    pub base: String,
    http: reqwest::blocking::Client,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base", &self.base).finish()
    }
}

impl Client {
    /// A client of the node at `url`.
    pub fn new(url: &str) -> Result<Client> {
        Client::with_ca(url, None)
    }

    /// A client of the node at `url`, trusting `ca_cert` (PEM) besides the
    /// system's roots.
    pub fn with_ca(url: &str, ca_cert: Option<&std::path::Path>) -> Result<Client> {
        let base = url.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            super::usage!("--node {url:?} is not an http:// or https:// URL");
        }
        let mut builder = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30));
        if let Some(path) = ca_cert {
            let pem = read_bounded(path, 1 << 20)?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .with_context(|| format!("{} is not a PEM certificate", path.display()))?;
            builder = builder.add_root_certificate(cert);
        }
        Ok(Client {
            base,
            http: builder.build()?,
        })
    }

    fn answer(
        &self,
        path: &str,
        response: reqwest::Result<reqwest::blocking::Response>,
    ) -> Result<(u16, Value)> {
        let response =
            response.with_context(|| format!("cannot reach the node at {}", self.base))?;
        let status = response.status().as_u16();
        let body: Value = response
            .json()
            .with_context(|| format!("{}{path} did not answer JSON", self.base))?;
        Ok((status, body))
    }

    /// GETs `path`; `Ok(None)` for 404.
    pub fn get(&self, path: &str) -> Result<Option<Value>> {
        let (status, body) =
            self.answer(path, self.http.get(format!("{}{path}", self.base)).send())?;
        match status {
            200 => Ok(Some(body)),
            404 => Ok(None),
            _ => Err(api_error(status, &body)),
        }
    }

    /// GETs `path`, which must exist.
    pub fn get_found(&self, path: &str) -> Result<Value> {
        self.get(path)?
            .ok_or_else(|| super::NotFound(format!("the node {} has no {path}", self.base)).into())
    }

    /// Submits a signed transaction; returns the node's answer.
    pub fn submit(&self, stx: &SignedTransaction) -> Result<Value> {
        self.post("/transactions", stx)
    }

    /// Submits up to 1,000 transactions at once; the node answers each.
    pub fn submit_batch(&self, txs: &[SignedTransaction]) -> Result<Value> {
        self.post("/transactions/batch", txs)
    }

    /// POSTs `body` as JSON to `path`; a 200 or 202 answer is the result.
    fn post(&self, path: &str, body: &(impl serde::Serialize + ?Sized)) -> Result<Value> {
        let (status, answer) = self.answer(
            path,
            self.http
                .post(format!("{}{path}", self.base))
                .json(body)
                .send(),
        )?;
        match status {
            200 | 202 => Ok(answer),
            _ => Err(api_error(status, &answer)),
        }
    }

    /// Waits until the transaction is finalized; returns its record.
    pub fn wait(&self, hash: &Hash, timeout: Duration) -> Result<Value> {
        let path = format!("/transactions/{hash}");
        let mut waited = Duration::ZERO;
        let step = Duration::from_millis(100);
        loop {
            if let Some(found) = self.get(&path)? {
                return Ok(found);
            }
            if waited >= timeout {
                bail!("transaction {hash} was accepted but not finalized within {timeout:?}; ask again with `tranche query tx {hash}`");
            }
            std::thread::sleep(step);
            waited += step;
        }
    }

    /// The chain this node runs.
    pub fn chain_id(&self) -> Result<ChainId> {
        let status = self.get_found("/status")?;
        serde_json::from_value(status["chain_id"].clone())
            .context("the node's status has no chain_id")
    }
}

/// The node's error answer as an error; one that refuses the transaction
/// itself (its nonce, size or validity) is the caller's to fix, like a
/// ledger rejection, and exits 3.
fn api_error(status: u16, body: &Value) -> anyhow::Error {
    match serde_json::from_value::<tranche_api::ErrorBody>(body.clone()) {
        Ok(e) if e.code.refuses_transaction() => super::Refused(format!(
            "the node refused the transaction ({status} {}): {}",
            e.code, e.message
        ))
        .into(),
        Ok(e) => anyhow!("the node refused ({status} {}): {}", e.code, e.message),
        Err(_) => anyhow!("the node answered {status}: {body}"),
    }
}

/// `tranche send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// The payload file, JSON with "type" and that kind's fields (see
    /// `tranche tx build payload --help`); '-' reads standard input.
    pub payload: PathBuf,
    #[command(flatten)]
    pub key: KeyArgs,
    #[command(flatten)]
    pub node: NodeUrl,
    /// The nonce to use (default: the signer's next, as the node knows it).
    #[arg(long)]
    pub nonce: Option<u64>,
    /// How long the transaction stays valid: e.g. 30s, 10m, 1h.
    #[arg(long, default_value = "10m", value_parser = parse_duration_ms)]
    pub valid_for: u64,
    /// Return once the node accepts it, without waiting for finality.
    #[arg(long)]
    pub no_wait: bool,
}

/// `tranche submit`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// Signed transactions (JSON, hex or binary, as `tranche tx sign` writes
    /// them). Several go to the node in batches of up to 1,000, their
    /// signatures checked together; each is answered on its own.
    #[arg(required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub node: NodeUrl,
    /// Return once the node accepts it, without waiting for finality.
    #[arg(long)]
    pub no_wait: bool,
}

fn deliver(ctx: &Ctx, client: &Client, stx: &SignedTransaction, no_wait: bool) -> Result<ExitCode> {
    let accepted = client.submit(stx)?;
    let hash = stx.hash();
    if no_wait {
        if ctx.json {
            print_json(&accepted);
        } else {
            println!(
                "transaction {hash} {}",
                accepted["status"].as_str().unwrap_or("accepted")
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let record = client.wait(&hash, Duration::from_secs(60))?;
    let outcome = &record["receipt"]["outcome"];
    let applied = outcome["status"] == "applied";
    if ctx.json {
        print_json(&record);
    } else if applied {
        println!("transaction {hash} applied in block {}", record["height"]);
    } else {
        println!(
            "transaction {hash} finalized in block {} but rejected: {}",
            record["height"], outcome
        );
    }
    Ok(if applied {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::exit::REJECTED)
    })
}

pub fn send(ctx: &Ctx, args: SendArgs) -> Result<ExitCode> {
    let payload = read_payload(&args.payload)?;
    let client = args.node.client()?;
    let key = open_key(ctx, &args.key)?;
    let chain_id = client.chain_id()?;
    let signer = key.public_key();
    let nonce = match args.nonce {
        Some(0) => super::usage!("--nonce starts at 1"),
        Some(n) => n,
        None => client.get_found(&format!("/signers/{signer}/nonce"))?["data"]["next_nonce"]
            .as_u64()
            .ok_or_else(|| anyhow!("the node did not say the signer's next nonce"))?,
    };
    let tx = Transaction {
        chain_id,
        signer,
        nonce,
        valid_until: now().plus_ms(args.valid_for),
        payload,
    };
    let stx = sign_transaction(&key, tx)?;
    deliver(ctx, &client, &stx, args.no_wait)
}

pub fn submit(ctx: &Ctx, args: SubmitArgs) -> Result<ExitCode> {
    let mut txs = Vec::with_capacity(args.files.len());
    for file in &args.files {
        let bytes = read_bounded(file, TX_FILE_BYTES_MAX)?;
        txs.push(decode_signed(file, &bytes)?);
    }
    let client = args.node.client()?;
    if let [stx] = txs.as_slice() {
        return deliver(ctx, &client, stx, args.no_wait);
    }
    // Refused ones are reported, and the rest still go in.
    let mut answers = Vec::with_capacity(txs.len());
    for chunk in txs.chunks(tranche_api::BATCH_TXS_MAX) {
        let body = client.submit_batch(chunk)?;
        let results = body["results"]
            .as_array()
            .filter(|r| r.len() == chunk.len())
            .ok_or_else(|| {
                anyhow!("the node answered the batch without one result each: {body}")
            })?;
        answers.extend(results.iter().cloned());
    }
    let mut all_applied = true;
    let mut records = Vec::with_capacity(answers.len());
    for (file, answer) in args.files.iter().zip(answers) {
        let hash = answer["hash"].as_str().unwrap_or("?").to_string();
        let record = if answer.get("error").is_some() {
            all_applied = false;
            if !ctx.json {
                println!(
                    "{}: transaction {hash} refused: {} ({})",
                    file.display(),
                    answer["error"]["message"].as_str().unwrap_or(""),
                    answer["error"]["code"].as_str().unwrap_or("")
                );
            }
            answer
        } else if args.no_wait {
            if !ctx.json {
                println!(
                    "{}: transaction {hash} {}",
                    file.display(),
                    answer["status"].as_str().unwrap_or("accepted")
                );
            }
            answer
        } else {
            let hash: Hash = hash
                .parse()
                .map_err(|_| anyhow!("the node answered with a malformed hash: {answer}"))?;
            let record = client.wait(&hash, Duration::from_secs(60))?;
            let outcome = &record["receipt"]["outcome"];
            let applied = outcome["status"] == "applied";
            all_applied &= applied;
            if !ctx.json {
                if applied {
                    println!(
                        "{}: transaction {hash} applied in block {}",
                        file.display(),
                        record["height"]
                    );
                } else {
                    println!(
                        "{}: transaction {hash} finalized in block {} but rejected: {outcome}",
                        file.display(),
                        record["height"]
                    );
                }
            }
            record
        };
        records.push(record);
    }
    if ctx.json {
        print_json(&Value::Array(records));
    }
    Ok(if all_applied {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::exit::REJECTED)
    })
}

/// What `tranche query` reads.
#[derive(Debug, Subcommand)]
pub enum QueryCommand {
    /// The node's chain, committee and last finalized height and state root.
    Status,
    /// A finalized transaction's block and receipt.
    Tx {
        /// The transaction hash.
        hash: Hash,
    },
    /// A finalized block ("latest" for the last).
    Block {
        /// The height, or "latest".
        height: String,
    },
    /// An organisation's key, roles and validator bond.
    Org {
        /// The organisation id.
        org: String,
    },
    /// A wallet's DID, balances, custody and freezes.
    Wallet {
        /// The wallet address (tr1...).
        address: String,
    },
    /// A token and its supply (issued, revoked, outstanding).
    Token {
        /// The token id.
        token: String,
    },
    /// An asset and its appraisals.
    Asset {
        /// The asset id.
        asset: String,
    },
    /// An issuance request and its check: requested against issued (SR-1).
    Issuance {
        /// The request id.
        request: String,
    },
    /// A revocation request and its check: requested against revoked (SR-1).
    Revocation {
        /// The request id.
        request: String,
    },
    /// Validators: the committee, bonds and delegations, and recorded
    /// equivocations with the stake they cost (C-2).
    Validators,
    /// A signer's next nonce.
    Nonce {
        /// The public key (hex).
        key: String,
    },
    /// Finalized transfers by token, wallet and time (C-3).
    Transfers {
        /// Only this token.
        #[arg(long)]
        token: Option<String>,
        /// Only transfers from or to this wallet.
        #[arg(long)]
        wallet: Option<String>,
        /// From this time on (ms since 1970).
        #[arg(long)]
        since: Option<u64>,
        /// Before this time (ms since 1970).
        #[arg(long)]
        until: Option<u64>,
        /// At most this many (1 to 1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

/// `tranche query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    #[command(subcommand)]
    pub what: QueryCommand,
    #[command(flatten)]
    pub node: NodeUrl,
}

/// Encodes one path segment (ids are plain, but never trust that).
fn seg(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn query(_ctx: &Ctx, args: QueryArgs) -> Result<ExitCode> {
    let client = args.node.client()?;
    let path = match &args.what {
        QueryCommand::Status => "/status".to_string(),
        QueryCommand::Tx { hash } => format!("/transactions/{hash}"),
        QueryCommand::Block { height } => format!("/blocks/{}", seg(height)),
        QueryCommand::Org { org } => format!("/organisations/{}", seg(org)),
        QueryCommand::Wallet { address } => format!("/wallets/{}", seg(address)),
        QueryCommand::Token { token } => format!("/tokens/{}", seg(token)),
        QueryCommand::Asset { asset } => format!("/assets/{}", seg(asset)),
        QueryCommand::Issuance { request } => format!("/issuances/{}", seg(request)),
        QueryCommand::Revocation { request } => format!("/revocations/{}", seg(request)),
        QueryCommand::Nonce { key } => format!("/signers/{}/nonce", seg(key)),
        QueryCommand::Validators => "/validators".to_string(),
        QueryCommand::Transfers {
            token,
            wallet,
            since,
            until,
            limit,
        } => {
            let mut q = vec![format!("limit={limit}")];
            if let Some(t) = token {
                q.push(format!("token={}", seg(t)));
            }
            if let Some(w) = wallet {
                q.push(format!("wallet={}", seg(w)));
            }
            if let Some(s) = since {
                q.push(format!("since={s}"));
            }
            if let Some(u) = until {
                q.push(format!("until={u}"));
            }
            format!("/transfers?{}", q.join("&"))
        }
    };
    match client.get(&path)? {
        Some(v) => {
            print_json(&v);
            Ok(ExitCode::SUCCESS)
        }
        None => Err(
            super::NotFound(format!("not found: the node {} has no {path}", client.base)).into(),
        ),
    }
}

/// `tranche watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Only this token's transfers.
    #[arg(long)]
    pub token: Option<String>,
    /// Only transfers from or to this wallet.
    #[arg(long)]
    pub wallet: Option<String>,
    #[command(flatten)]
    pub node: NodeUrl,
}

pub fn watch(_ctx: &Ctx, args: WatchArgs) -> Result<ExitCode> {
    let client = args.node.client()?;
    let mut q = Vec::new();
    if let Some(t) = &args.token {
        q.push(format!("token={}", seg(t)));
    }
    if let Some(w) = &args.wallet {
        q.push(format!("wallet={}", seg(w)));
    }
    let url = format!("{}/events?{}", client.base, q.join("&"));
    // No overall timeout: the stream lasts as long as the user watches.
    let mut builder = reqwest::blocking::Client::builder().timeout(None);
    if let Some(path) = &args.node.ca_cert {
        let pem = read_bounded(path, 1 << 20)?;
        builder = builder.add_root_certificate(
            reqwest::Certificate::from_pem(&pem)
                .with_context(|| format!("{} is not a PEM certificate", path.display()))?,
        );
    }
    let response = builder
        .build()?
        .get(&url)
        .send()
        .with_context(|| format!("cannot reach the node at {}", client.base))?;
    if !response.status().is_success() {
        let status = response.status().as_u16();
        let body: Value = response.json().unwrap_or(Value::Null);
        return Err(api_error(status, &body));
    }
    // One JSON line per finalized transfer, as the server-sent events arrive.
    let mut event = String::new();
    for line in std::io::BufReader::new(response).lines() {
        let line = line.context("the stream broke")?;
        if let Some(name) = line.strip_prefix("event:") {
            event = name.trim().to_string();
        } else if let Some(data) = line.strip_prefix("data:") {
            match event.as_str() {
                "transfer" => println!("{}", data.trim()),
                "lagged" => eprintln!(
                    "missed {} blocks; query /transfers to catch up",
                    data.trim()
                ),
                _ => {}
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
