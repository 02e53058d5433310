//! The custodian as a service: one custodial wallet per holder, transfers only on the holder's signed authorization within the custodian's policy, distributions claimed for holders, an audit trail with proofs, and real-time notices (SR-3, ST-3).
//!
//! A holder logs in with a presentation (a KYC credential from an issuer
//! the custodian trusts) and hands in their consent (`tranche did
//! consent-custody`); the custodian opens their custodial wallet on chain.
//! Tokens come in by ordinary transfers to that wallet. They leave only on
//! an authorization the holder signed offline (`tranche did
//! authorize-transfer`): the service checks it against its policy (per
//! transfer and daily limits, destinations, the holder's free balance, and
//! the token's compliance rules through the node's pre-check) and, if it
//! passes, records its own transaction carrying it in the outbox, in the
//! same database transaction as the decision and its audit entry. The
//! follower records what the chain made of it, every transfer touching a
//! holder's wallet (an event with a stable id, pushed over a live stream
//! and to the holder's webhook, signed), and claims the distributions the
//! holders' wallets are entitled to — in the block's database transaction,
//! so a kill -9 at any moment neither loses nor doubles anything.

mod api;
mod follow;
mod holders;
mod instructions;
mod notices;
mod recorder;
mod travel;

pub use api::router;
pub use holders::{HolderView, Webhook};
pub use instructions::{InstructionView, Proof};
pub use notices::EventView;

use anyhow::Context as _;
use serde::Deserialize;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::mpsc;
use tranche_service::{Migration, Service, ServiceConfig};
use tranche_types::{Units, WalletAddress};

/// The custodian's tables.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 100,
    name: "custodian",
    sql: "
CREATE TABLE cus_holders (
    did TEXT PRIMARY KEY, wallet TEXT NOT NULL UNIQUE, state TEXT NOT NULL,
    nonce BIGINT NOT NULL, tx TEXT NOT NULL, outcome TEXT, next_number BIGINT NOT NULL,
    webhook TEXT, delivered BIGINT NOT NULL, attempts BIGINT NOT NULL, retry_ms BIGINT NOT NULL,
    opened_ms BIGINT NOT NULL);
CREATE INDEX cus_holders_by_nonce ON cus_holders (nonce);
CREATE TABLE cus_instructions (
    id TEXT PRIMARY KEY, did TEXT NOT NULL, wallet TEXT NOT NULL, number BIGINT NOT NULL,
    token TEXT NOT NULL, dest TEXT NOT NULL, amount TEXT NOT NULL, reference TEXT,
    valid_until_ms BIGINT NOT NULL, day BIGINT NOT NULL, state TEXT NOT NULL, reason TEXT,
    message TEXT, nonce BIGINT, tx TEXT, height BIGINT, at_ms BIGINT NOT NULL);
CREATE INDEX cus_instructions_by_did ON cus_instructions (did, at_ms);
CREATE INDEX cus_instructions_by_nonce ON cus_instructions (nonce);
CREATE TABLE cus_balances (
    wallet TEXT NOT NULL, token TEXT NOT NULL, units TEXT NOT NULL, PRIMARY KEY (wallet, token));
CREATE TABLE cus_checkpoints (
    token TEXT NOT NULL, number BIGINT NOT NULL, wallet TEXT NOT NULL,
    PRIMARY KEY (token, number, wallet));
CREATE TABLE cus_checkpoint_counts (token TEXT PRIMARY KEY, number BIGINT NOT NULL);
CREATE TABLE cus_distributions (
    distribution TEXT PRIMARY KEY, token TEXT NOT NULL, checkpoint BIGINT NOT NULL);
CREATE TABLE cus_claims (
    distribution TEXT NOT NULL, wallet TEXT NOT NULL, nonce BIGINT NOT NULL,
    state TEXT NOT NULL, outcome TEXT, PRIMARY KEY (distribution, wallet));
CREATE INDEX cus_claims_by_nonce ON cus_claims (nonce);
CREATE TABLE cus_events (
    seq BIGINT PRIMARY KEY, did TEXT NOT NULL, wallet TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX cus_events_by_did ON cus_events (did, seq);
",
}];

/// The credential a holder shows to open a custodial wallet (from a
/// trusted issuer).
pub const KYC: &str = "KycCredential";
/// Staff roles that read every holder, instruction and event.
pub const READERS: &[&str] = &["staff:operator", "staff:auditor"];

/// Whether `who` is staff who read every holder's records.
pub(crate) fn is_staff(who: &tranche_service::auth::Principal) -> bool {
    READERS.iter().any(|r| who.roles.iter().any(|x| x == r))
}

/// An example config, shown by `tranche custodian --help`.
pub const EXAMPLE_CONFIG: &str = r#"[service]
org = "devnet-custodian"                 # the organisation, as the chain knows it (role Custodian)
key_file = "keys/devnet-custodian.key"   # its key: the one the chain holds for org
password_file = "password"               # else TRANCHE_PASSWORD, else a prompt
node = "http://127.0.0.1:27104"          # its node's API (https:// with node_ca = "ca.pem")
listen = "127.0.0.1:28104"               # where this service's API listens
data_dir = "custodian-data"              # SQLite database and vault key
trusted_issuers = ["did:key:z6Mk..."]    # whose KYC credentials open custodial wallets
# database_url = "postgres://custodian@db.internal/custodian"   # PostgreSQL instead of SQLite
# tls = { cert = "custodian.crt", key = "custodian.key" }       # serve HTTPS

[custodian]
transfer_max = "1000000"      # the most units one instruction moves
daily_max = "10000000"        # the most units one holder moves out per UTC day, all tokens
destinations = []             # if not empty, the only wallets (besides the holder's own) paid
"#;

/// The `[custodian]` table: the policy every instruction meets.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustodianSection {
    /// The most units one instruction moves.
    pub transfer_max: Units,
    /// The most units one holder moves out per UTC day, all tokens together.
    pub daily_max: Units,
    /// If not empty, the only wallets instructions may pay, besides wallets
    /// bound to the holder's own DID.
    #[serde(default)]
    pub destinations: Vec<WalletAddress>,
}

/// The custodian service's config file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustodianConfig {
    /// What every service has.
    pub service: ServiceConfig,
    /// The custodian's policy.
    pub custodian: CustodianSection,
}

impl CustodianConfig {
    /// Reads and checks the config file at `path`.
    pub fn load(path: &Path) -> anyhow::Result<CustodianConfig> {
        let mut c: CustodianConfig = tranche_service::config::read(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        c.service = c.service.resolve(base)?;
        let p = &c.custodian;
        if p.transfer_max.is_zero() || p.daily_max.is_zero() {
            anyhow::bail!("custodian.transfer_max and custodian.daily_max must be above 0");
        }
        if p.destinations.len() > 10_000 {
            anyhow::bail!("custodian.destinations lists at most 10,000 wallets");
        }
        Ok(c)
    }
}

/// The custodian's service.
#[derive(Debug)]
pub struct Custodian {
    /// The kit.
    pub service: Arc<Service>,
    /// Its policy.
    pub policy: CustodianSection,
    /// Told when the follower's events are committed, for the live
    /// streams and the webhook sender.
    pub(crate) events: notices::Wake,
    /// Decisions on instructions, on their way to the recorder.
    pub(crate) decisions: mpsc::Sender<recorder::Decision>,
    /// The recorder's end, until [`Custodian::run`] starts it.
    queue: std::sync::Mutex<Option<mpsc::Receiver<recorder::Decision>>>,
}

impl Custodian {
    /// Opens the custodian service of `config`.
    pub async fn open(config: CustodianConfig) -> anyhow::Result<Arc<Custodian>> {
        let service = Service::open(config.service, MIGRATIONS).await?;
        Ok(Custodian::with_service(service, config.custodian))
    }

    /// The custodian on an opened `service`.
    pub fn with_service(service: Arc<Service>, policy: CustodianSection) -> Arc<Custodian> {
        let (decisions, queue) = mpsc::channel(recorder::RECORD_QUEUE_MAX);
        Arc::new(Custodian {
            service,
            policy,
            events: notices::Wake::default(),
            decisions,
            queue: std::sync::Mutex::new(Some(queue)),
        })
    }

    /// Runs the service until SIGINT or SIGTERM: the kit's tasks, the
    /// webhook sender and the API.
    pub async fn run(self: Arc<Self>) -> anyhow::Result<()> {
        let router = router(&self);
        let queue = self
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .context("the custodian runs once")?;
        let recorder = tokio::spawn(Arc::clone(&self).record_decisions(queue));
        let sender = tokio::spawn(Arc::clone(&self).send_webhooks());
        let ran = Arc::clone(&self.service)
            .run(
                Arc::clone(&self) as Arc<dyn tranche_service::follower::Apply>,
                router,
            )
            .await
            .context("running the custodian service");
        sender.abort();
        recorder.abort();
        ran
    }
}
