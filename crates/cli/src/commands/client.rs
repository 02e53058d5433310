//! The client side of the node API: send transactions to a node and read
//! the chain back (`tranche send`, `submit`, `query`, `watch`).

use super::tx::{decode_signed, parse_duration_ms, read_payload, TX_FILE_BYTES_MAX};
use super::{now, open_key, print_json, KeyArgs};
use crate::Ctx;
use anyhow::{anyhow, Result};
use clap::{Args, Subcommand};
use serde_json::json;
use serde_json::Value;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tranche_api::client::{
    BlockingNodeClient, ClientError, NodeClient, NodeEvent, ProofOf, TransferFilter,
};
use tranche_api::node::{
    BatchAnswer, BatchItem, Status, SubmitStatus, Submitted, TransactionRecord,
};
use tranche_crypto::sign_transaction;
use tranche_keystore::read_bounded;
use tranche_types::{
    ChainId, Hash, Outcome, SignedTransaction, TokenId, Transaction, Units, WalletAddress,
};

/// The node to talk to.
#[derive(Debug, Args)]
pub struct NodeUrl {
    /// The node API's base URL (`tranche devnet` prints them). Several,
    /// separated by commas, to fail over: calls go to the first and move on
    /// to the next within a second when a node cannot be reached (a
    /// transaction sent again is harmless: the same one is answered alike).
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

/// A blocking client of one node: the typed client of `tranche-api`, its
/// errors mapped to the exit codes every command uses.
#[derive(Debug)]
pub struct Client {
    /// The node's base URL.
    pub base: String,
    inner: BlockingNodeClient,
}

/// The CLI's error for a failed call: a refused transaction exits 3, a
/// missing thing 4, a bad URL 2, anything else 1.
fn cli_error(e: ClientError) -> anyhow::Error {
    match e {
        ClientError::BadUrl(_) => super::Usage(format!("--node {e}")).into(),
        ClientError::Refused { ref body, .. } if body.code.refuses_transaction() => {
            super::Refused(format!("the node refused the transaction: {e}")).into()
        }
        ref refused @ ClientError::Refused { .. } if refused.is_not_found() => {
            super::NotFound(e.to_string()).into()
        }
        e => anyhow::Error::new(e),
    }
}

impl Client {
    /// A client of the node at `url`, trusting `ca_cert` (PEM) besides the
    /// system's roots.
    pub fn with_ca(url: &str, ca_cert: Option<&std::path::Path>) -> Result<Client> {
        let pem = ca_cert.map(|p| read_bounded(p, 1 << 20)).transpose()?;
        let inner = BlockingNodeClient::new(url, pem.as_deref()).map_err(|e| match e {
            ClientError::BadCaCertificate(_) => anyhow!(
                "{} is not a PEM certificate",
                ca_cert.map(|p| p.display().to_string()).unwrap_or_default()
            ),
            e => cli_error(e),
        })?;
        Ok(Client {
            base: inner.inner().base().to_string(),
            inner,
        })
    }

    /// Runs one call of the typed client.
    pub fn call<'a, F, T>(&'a self, f: impl FnOnce(&'a NodeClient) -> F) -> Result<T>
    where
        F: std::future::Future<Output = Result<T, ClientError>> + 'a,
    {
        self.inner.run(f).map_err(cli_error)
    }

    /// Like [`Client::call`] for a thing that may not exist: `None` is an
    /// error that exits 4, naming what was asked.
    pub fn found<'a, F, T>(&'a self, what: &str, f: impl FnOnce(&'a NodeClient) -> F) -> Result<T>
    where
        F: std::future::Future<Output = Result<Option<T>, ClientError>> + 'a,
    {
        self.call(f)?.ok_or_else(|| {
            super::NotFound(format!("not found: the node {} has no {what}", self.base)).into()
        })
    }

    /// The node's status.
    pub fn status(&self) -> Result<Status> {
        self.call(|c| c.status())
    }

    /// Submits a signed transaction.
    pub fn submit(&self, stx: &SignedTransaction) -> Result<Submitted> {
        self.call(|c| c.submit(stx))
    }

    /// Submits up to 1,000 transactions at once; the node answers each.
    pub fn submit_batch(&self, txs: &[SignedTransaction]) -> Result<BatchAnswer> {
        self.call(|c| c.submit_batch(txs))
    }

    /// The signer's next nonce, as the node knows it.
    pub fn next_nonce(&self, signer: &tranche_types::PublicKey) -> Result<u64> {
        self.call(|c| c.next_nonce(signer))
    }

    /// Waits until the transaction is finalized; returns its record.
    pub fn wait(&self, hash: &Hash, timeout: Duration) -> Result<TransactionRecord> {
        self.call(|c| c.wait(hash, timeout))?.ok_or_else(|| {
            anyhow!("transaction {hash} was accepted but not finalized within {timeout:?}; ask again with `tranche query tx {hash}`")
        })
    }

    /// The chain this node runs.
    pub fn chain_id(&self) -> Result<ChainId> {
        Ok(self.status()?.chain_id)
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
            println!("transaction {hash} {}", status_word(accepted.status));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let record = client.wait(&hash, Duration::from_secs(60))?;
    let applied = record.receipt.outcome == Outcome::Applied;
    if ctx.json {
        print_json(&record);
    } else if applied {
        println!("transaction {hash} applied in block {}", record.height);
    } else {
        println!(
            "transaction {hash} finalized in block {} but rejected: {}",
            record.height,
            outcome_text(&record.receipt.outcome)
        );
    }
    Ok(if applied {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::exit::REJECTED)
    })
}

fn status_word(status: SubmitStatus) -> &'static str {
    match status {
        SubmitStatus::Pending => "pending",
        SubmitStatus::Finalized => "finalized",
    }
}

fn outcome_text(outcome: &Outcome) -> String {
    serde_json::to_string(outcome).unwrap_or_else(|_| format!("{outcome:?}"))
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
        None => client.next_nonce(&signer)?,
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
    let mut answers: Vec<BatchItem> = Vec::with_capacity(txs.len());
    for chunk in txs.chunks(tranche_api::BATCH_TXS_MAX) {
        answers.extend(client.submit_batch(chunk)?.results);
    }
    let mut all_applied = true;
    let mut records = Vec::with_capacity(answers.len());
    for (file, answer) in args.files.iter().zip(answers) {
        let hash = answer.hash;
        let record = if let Some(error) = &answer.error {
            all_applied = false;
            if !ctx.json {
                println!(
                    "{}: transaction {hash} refused: {} ({})",
                    file.display(),
                    error.message,
                    error.code
                );
            }
            serde_json::to_value(&answer)?
        } else if args.no_wait {
            if !ctx.json {
                println!(
                    "{}: transaction {hash} {}",
                    file.display(),
                    answer.status.map_or("accepted", status_word)
                );
            }
            serde_json::to_value(&answer)?
        } else {
            let record = client.wait(&hash, Duration::from_secs(60))?;
            let applied = record.receipt.outcome == Outcome::Applied;
            all_applied &= applied;
            if !ctx.json {
                if applied {
                    println!(
                        "{}: transaction {hash} applied in block {}",
                        file.display(),
                        record.height
                    );
                } else {
                    println!(
                        "{}: transaction {hash} finalized in block {} but rejected: {}",
                        file.display(),
                        record.height,
                        outcome_text(&record.receipt.outcome)
                    );
                }
            }
            serde_json::to_value(&record)?
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
    /// A token's rules in force (version, since when, suspended or not),
    /// every earlier version, the claim issuers it trusts by topic, and its
    /// agent's outstanding transfer approvals. The agent changes them with
    /// the set_token_rules, set_rule_checks, set_trusted_issuers and
    /// approve_transfer payloads (`tranche tx build payload`).
    Rules {
        /// The token id.
        token: String,
    },
    /// A token's documents (name, URI, digest) and the history of their
    /// changes with heights (set_document, remove_document).
    Documents {
        /// The token id.
        token: String,
    },
    /// Whether a holder's transfer would be applied now and, if not, every
    /// rule it breaks with its stable code (the ledger's own checks). Exits
    /// 3 when it would be refused.
    ///
    /// Example:
    ///   tranche query check-transfer --token SEOUL-TOWER-1 --from tr1... --to tr1... --amount 10
    #[command(verbatim_doc_comment)]
    CheckTransfer {
        /// The token id.
        #[arg(long)]
        token: String,
        /// The sending wallet (tr1...).
        #[arg(long)]
        from: String,
        /// The receiving wallet (tr1...).
        #[arg(long)]
        to: String,
        /// Whole token units.
        #[arg(long)]
        amount: String,
    },
    /// A ballot of a token's holders: its choices with the weight cast for
    /// each, its window, its voters; with --wallet, that wallet's vote. The
    /// agent opens one with the open_ballot payload, a holder votes with
    /// cast_vote (`tranche tx build payload`).
    Ballot {
        /// The ballot's id.
        ballot: String,
        /// Show this wallet's vote (tr1...).
        #[arg(long)]
        wallet: Option<String>,
    },
    /// A settlement instruction: its legs, who affirmed and who is awaited,
    /// where it stands and why it failed if it did. Anyone creates one with
    /// the create_instruction payload; each giving wallet affirms it
    /// (affirm_instruction), the last carrying it out; a party cancels it
    /// (cancel_instruction).
    Instruction {
        /// The instruction's id.
        instruction: String,
    },
    /// A hold: the holder's wallet, the units, the notary, the receiver,
    /// the expiry and where it stands. The holder creates one with the
    /// create_hold payload; the notary executes it (execute_hold) or
    /// releases it (release_hold).
    Hold {
        /// The hold's id.
        hold: String,
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
    /// An offering: its terms, phase, escrow and every subscription (F5-3..F5-8).
    Offering {
        /// The offering's id.
        offering: String,
    },
    /// A revocation request and its check: requested against revoked (SR-1).
    Revocation {
        /// The request id.
        request: String,
    },
    /// Validators: the committee, bonds and delegations, and recorded
    /// equivocations with the stake they cost (C-2).
    Validators,
    /// The network's policy, set by governance: the appraisal tolerance
    /// (SR-6). Governors change it by voting for
    /// {"type": "govern", "action": {"type": "set_policy", "appraisal_tolerance_bps": 300}}.
    Policy,
    /// The AML regulator's policy (F6-1): every version published, with
    /// the block it governs from, and the one in force.
    AmlPolicy,
    /// A record of the state with its Merkle proof, for another party to
    /// check with `tranche verify` (save it with `> proof.json`).
    #[command(subcommand)]
    Proof(ProofCommand),
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

/// The records `tranche query proof` proves.
#[derive(Debug, Subcommand)]
pub enum ProofCommand {
    /// A wallet's balance of a token (or that it holds none).
    Balance {
        /// The token id.
        token: String,
        /// The wallet address (tr1...).
        wallet: String,
    },
    /// An issuance request and what came of it (SR-1).
    Issuance {
        /// The request id.
        request: String,
    },
    /// A revocation request and what came of it (SR-1, F5-10).
    Revocation {
        /// The request id.
        request: String,
    },
    /// A claim about a DID: its credential's digest, expiry, withdrawal.
    Claim {
        /// The DID.
        did: String,
        /// The topic: kyc, accredited, jurisdiction, legal-person, or a number.
        topic: String,
        /// The claim issuer's organisation id.
        issuer: String,
    },
    /// A custodial wallet's custody binding (SR-3).
    Custody {
        /// The custodial wallet's address (tr1...).
        wallet: String,
    },
}

/// A claim topic by name or number.
fn topic(text: &str) -> Result<u16> {
    Ok(match text {
        "kyc" => 1,
        "accredited" => 2,
        "jurisdiction" => 3,
        "legal-person" => 4,
        n => parsed(
            "claim topic (kyc, accredited, jurisdiction, legal-person or a number)",
            n,
        )?,
    })
}

impl ProofCommand {
    fn of(&self) -> Result<ProofOf> {
        Ok(match self {
            ProofCommand::Balance { token, wallet } => ProofOf::Balance {
                token: token.clone(),
                wallet: wallet.clone(),
            },
            ProofCommand::Issuance { request } => ProofOf::Issuance(request.clone()),
            ProofCommand::Revocation { request } => ProofOf::Revocation(request.clone()),
            ProofCommand::Claim {
                did,
                topic: t,
                issuer,
            } => ProofOf::Claim {
                did: did.clone(),
                topic: topic(t)?,
                issuer: issuer.clone(),
            },
            ProofCommand::Custody { wallet } => ProofOf::Custody(wallet.clone()),
        })
    }
}

/// `tranche query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    #[command(subcommand)]
    pub what: QueryCommand,
    #[command(flatten)]
    pub node: NodeUrl,
}

fn parsed<T: std::str::FromStr>(what: &str, text: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    text.parse()
        .map_err(|e| super::Usage(format!("{what} {text:?} is not valid: {e}")).into())
}

pub fn query(_ctx: &Ctx, args: QueryArgs) -> Result<ExitCode> {
    let client = args.node.client()?;
    let answer: Value = match &args.what {
        QueryCommand::Status => serde_json::to_value(client.status()?)?,
        QueryCommand::Tx { hash } => {
            serde_json::to_value(client.found(&format!("finalized transaction {hash}"), |c| {
                c.transaction(hash)
            })?)?
        }
        QueryCommand::Block { height } if height == "latest" => {
            serde_json::to_value(client.found("finalized block", |c| c.latest_block())?)?
        }
        QueryCommand::Block { height } => {
            let h: u64 = parsed("height", height)?;
            serde_json::to_value(client.found(&format!("block {h}"), |c| c.block(h))?)?
        }
        QueryCommand::Org { org } => serde_json::to_value(
            client.found(&format!("organisation {org}"), |c| c.organisation(org))?,
        )?,
        QueryCommand::Wallet { address } => {
            let w: WalletAddress = parsed("wallet address", address)?;
            serde_json::to_value(client.call(|c| c.wallet(&w))?)?
        }
        QueryCommand::Token { token } => {
            serde_json::to_value(client.found(&format!("token {token}"), |c| c.token(token))?)?
        }
        QueryCommand::Rules { token } => serde_json::to_value(
            client.found(&format!("token {token}"), |c| c.token_rules(token))?,
        )?,
        QueryCommand::Documents { token } => serde_json::to_value(
            client.found(&format!("token {token}"), |c| c.token_documents(token))?,
        )?,
        QueryCommand::CheckTransfer {
            token,
            from,
            to,
            amount,
        } => {
            let token: TokenId = parsed("--token", token)?;
            let from: WalletAddress = parsed("--from", from)?;
            let to: WalletAddress = parsed("--to", to)?;
            let amount: Units = parsed("--amount", amount)?;
            let verdict = client.call(|c| c.check_transfer(&token, &from, &to, amount))?;
            print_json(&serde_json::to_value(&verdict)?);
            return Ok(if verdict.data.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(super::exit::REJECTED)
            });
        }
        QueryCommand::Instruction { instruction } => {
            serde_json::to_value(client.found(&format!("instruction {instruction}"), |c| {
                c.instruction(instruction)
            })?)?
        }
        QueryCommand::Hold { hold } => {
            serde_json::to_value(client.found(&format!("hold {hold}"), |c| c.hold(hold))?)?
        }
        QueryCommand::Ballot { ballot, wallet } => {
            let wallet: Option<WalletAddress> = wallet
                .as_deref()
                .map(|w| parsed("--wallet", w))
                .transpose()?;
            serde_json::to_value(client.found(&format!("ballot {ballot}"), |c| {
                c.ballot(ballot, wallet.as_ref())
            })?)?
        }
        QueryCommand::Asset { asset } => {
            serde_json::to_value(client.found(&format!("asset {asset}"), |c| c.asset(asset))?)?
        }
        QueryCommand::Offering { offering } => {
            serde_json::to_value(client.found(&format!("offering {offering}"), |c| {
                c.offering_in_full(offering)
            })?)?
        }
        QueryCommand::Issuance { request } => {
            serde_json::to_value(client.found(&format!("issuance request {request}"), |c| {
                c.issuance(request)
            })?)?
        }
        QueryCommand::Revocation { request } => {
            serde_json::to_value(client.found(&format!("revocation request {request}"), |c| {
                c.revocation(request)
            })?)?
        }
        QueryCommand::Nonce { key } => {
            let k: tranche_types::PublicKey = parsed("public key", key)?;
            json!({"data": {"next_nonce": client.next_nonce(&k)?}})
        }
        QueryCommand::Validators => serde_json::to_value(client.call(|c| c.validators())?)?,
        QueryCommand::Policy => serde_json::to_value(client.call(|c| c.policy())?)?,
        QueryCommand::AmlPolicy => serde_json::to_value(client.call(|c| c.aml_policy())?)?,
        QueryCommand::Proof(p) => {
            let of = p.of()?;
            serde_json::to_value(client.found("such record", |c| c.proof(&of))?)?
        }
        QueryCommand::Transfers {
            token,
            wallet,
            since,
            until,
            limit,
        } => {
            let filter = TransferFilter {
                token: token.as_deref().map(|t| parsed("token", t)).transpose()?,
                wallet: wallet.as_deref().map(|w| parsed("wallet", w)).transpose()?,
                since: *since,
                until: *until,
                limit: Some(*limit as usize),
            };
            serde_json::to_value(client.call(|c| c.transfers(&filter))?)?
        }
    };
    print_json(&answer);
    Ok(ExitCode::SUCCESS)
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
    let filter = TransferFilter {
        token: args
            .token
            .as_deref()
            .map(|t| parsed("--token", t))
            .transpose()?,
        wallet: args
            .wallet
            .as_deref()
            .map(|w| parsed("--wallet", w))
            .transpose()?,
        ..TransferFilter::default()
    };
    // One JSON line per finalized transfer, as the events arrive; the stream
    // lasts as long as the user watches.
    client.call(|c| async move {
        let mut events = c.events(&filter).await?;
        while let Some(event) = events.next().await? {
            match event {
                NodeEvent::Transfer(t) => println!(
                    "{}",
                    serde_json::to_string(&t).expect("a transfer event serializes")
                ),
                NodeEvent::Lagged(n) => {
                    eprintln!("missed {n} blocks; query /transfers to catch up")
                }
            }
        }
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
