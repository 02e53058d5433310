//! The AML regulator as a service: its policy published on chain, the exchanges' signed reports taken in and reconciled against the chain, named monitoring rules over them, alerts turned into freeze requests to token issuers, travel-rule messages checked against the transfers they name, and every decision on its audit log (F6-1, F6-6, F6-8, F6-9, REC-2, REC-9).
//!
//! The regulator publishes its AML policy as a ledger transaction that
//! takes effect at a block height; exchanges read it from their nodes and
//! enforce it. Its follower keeps, from every finalized block, which
//! wallets each exchange bound and every movement of units touching them.
//! Exchanges POST their reports signed by their on-chain keys; a report is
//! taken only from an organisation the chain records as an exchange, with
//! the exchange's signature over its hash, and a gap, a rewrite or a broken
//! link in the chain of reports is a finding. Each report is reconciled,
//! once the follower has seen the blocks it covers, in one database
//! transaction: every transfer on chain touching the exchange's wallets in
//! those blocks must be in it with the same token, wallets, identities,
//! amount and block, and every transfer in it on chain; each difference is
//! a finding with its evidence. The monitoring rules then run over its
//! trades, and each hit is an alert. Reports, with the identities they
//! carry, are kept in the vault, as are the travel-rule messages it asks
//! custodians and exchanges for.

mod api;
mod follow;
mod freeze;
mod intake;
mod monitor;
mod packed;
mod policy;
mod reconcile;
mod travel;

pub use api::router;
pub use freeze::{FreezeOrder, FreezeView};
pub use intake::Receipt;
pub use monitor::{Alert, Rules};
pub use policy::PolicyRequest;
pub use reconcile::{AlertView, FindingView, ReconciliationView, ReportView};
pub use travel::{TravelCheckRequest, TravelCheckView, TravelSide};

use serde::Deserialize;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tranche_service::{Migration, Service, ServiceConfig};
use tranche_types::AmlPolicy;

/// The regulator's tables.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 110,
        name: "regulator",
        sql: "
CREATE TABLE rg_orgs (key TEXT PRIMARY KEY, org TEXT NOT NULL, exchange BIGINT NOT NULL);
CREATE TABLE rg_wallets (
    wallet TEXT PRIMARY KEY, did TEXT NOT NULL, exchange TEXT, height BIGINT NOT NULL);
CREATE INDEX rg_wallets_by_exchange ON rg_wallets (exchange);
CREATE TABLE rg_chain (
    exchange TEXT NOT NULL, height BIGINT NOT NULL, idx BIGINT NOT NULL, tx TEXT NOT NULL,
    token TEXT NOT NULL, from_wallet TEXT, from_did TEXT, to_wallet TEXT NOT NULL, to_did TEXT,
    amount TEXT NOT NULL, kind TEXT NOT NULL, report_seq BIGINT,
    PRIMARY KEY (exchange, height, idx));
CREATE INDEX rg_chain_by_tx ON rg_chain (exchange, tx);
CREATE TABLE rg_exchanges (
    exchange TEXT PRIMARY KEY, last_seq BIGINT NOT NULL, last_hash TEXT NOT NULL,
    reconciled_through BIGINT NOT NULL);
CREATE TABLE rg_reports (
    exchange TEXT NOT NULL, seq BIGINT NOT NULL, hash TEXT NOT NULL,
    after_height BIGINT NOT NULL, through_height BIGINT NOT NULL,
    from_ms BIGINT NOT NULL, to_ms BIGINT NOT NULL, trades BIGINT NOT NULL,
    transfers BIGINT NOT NULL, chunks BIGINT NOT NULL, received_ms BIGINT NOT NULL,
    state TEXT NOT NULL, PRIMARY KEY (exchange, seq));
CREATE INDEX rg_reports_by_state ON rg_reports (state);
CREATE TABLE rg_reconciliations (
    exchange TEXT NOT NULL, seq BIGINT NOT NULL, after_height BIGINT NOT NULL,
    through_height BIGINT NOT NULL, on_chain BIGINT NOT NULL, reported BIGINT NOT NULL,
    matched BIGINT NOT NULL, findings BIGINT NOT NULL, alerts BIGINT NOT NULL,
    supply TEXT NOT NULL, at_ms BIGINT NOT NULL, PRIMARY KEY (exchange, seq));
CREATE TABLE rg_findings (
    id BIGINT PRIMARY KEY, exchange TEXT NOT NULL, seq BIGINT NOT NULL, kind TEXT NOT NULL,
    subject TEXT NOT NULL, detail TEXT NOT NULL, evidence TEXT NOT NULL, at_ms BIGINT NOT NULL);
CREATE UNIQUE INDEX rg_findings_once ON rg_findings (exchange, seq, kind, subject);
CREATE TABLE rg_alerts (
    id BIGINT PRIMARY KEY, rule TEXT NOT NULL, exchange TEXT NOT NULL, seq BIGINT NOT NULL,
    subject TEXT NOT NULL, detail TEXT NOT NULL, evidence TEXT NOT NULL, at_ms BIGINT NOT NULL);
CREATE UNIQUE INDEX rg_alerts_once ON rg_alerts (rule, exchange, seq, subject);
CREATE TABLE rg_links (
    a TEXT NOT NULL, b TEXT NOT NULL, reason TEXT NOT NULL, at_ms BIGINT NOT NULL,
    PRIMARY KEY (a, b));
CREATE TABLE rg_policies (
    nonce BIGINT PRIMARY KEY, version BIGINT NOT NULL, effective_height BIGINT NOT NULL,
    state TEXT NOT NULL, outcome TEXT, at_ms BIGINT NOT NULL);
",
    },
    Migration {
        version: 111,
        name: "regulator: movements kept by block",
        // One row per block and exchange, whatever the block carries: the
        // follower's cost follows the blocks, not the movements in them.
        sql: "
DROP TABLE rg_chain;
CREATE TABLE rg_blocks (
    exchange TEXT NOT NULL, height BIGINT NOT NULL, moves TEXT NOT NULL,
    PRIMARY KEY (exchange, height));
",
    },
    Migration {
        version: 112,
        name: "regulator: freeze requests",
        sql: "
CREATE TABLE rg_freezes (
    id BIGINT PRIMARY KEY, alert BIGINT NOT NULL, alert_text TEXT NOT NULL,
    evidence_hash TEXT NOT NULL, token TEXT NOT NULL, wallet TEXT NOT NULL,
    issuer TEXT NOT NULL, reason TEXT NOT NULL, state TEXT NOT NULL, answer TEXT,
    requested_ms BIGINT NOT NULL, executed_height BIGINT, executed_tx TEXT);
CREATE INDEX rg_freezes_open ON rg_freezes (token, wallet, state);
",
    },
    Migration {
        version: 113,
        name: "regulator: travel-rule checks",
        sql: "
CREATE TABLE rg_travel_checks (
    id BIGINT PRIMARY KEY, tx TEXT NOT NULL, height BIGINT NOT NULL, digest TEXT NOT NULL,
    verdict TEXT NOT NULL, sides TEXT NOT NULL, at_ms BIGINT NOT NULL);
",
    },
    Migration {
        version: 114,
        name: "regulator: kept movements as bytes",
        // Packed movements in `packed`, not as hex in `moves` (left empty):
        // half the bytes the follower writes in its turn. Rows written
        // before keep their text.
        sql: "ALTER TABLE rg_blocks ADD COLUMN packed BYTEA;",
    },
];

/// The staff role that publishes the policy and links identities.
pub const OPERATOR: &str = "staff:operator";
/// Staff roles that read reports, findings and alerts.
pub const READERS: &[&str] = &["staff:operator", "staff:analyst"];

/// An example config, shown by `tranche regulator --help`.
pub const EXAMPLE_CONFIG: &str = r#"[service]
org = "devnet-regulator"                 # the organisation, as the chain knows it (role Regulator)
key_file = "keys/devnet-regulator.key"   # its key: the one the chain holds for org
password_file = "password"               # else TRANCHE_PASSWORD, else a prompt
node = "http://127.0.0.1:27104"          # its node's API (https:// with node_ca = "ca.pem")
listen = "127.0.0.1:28104"               # where this service's API listens (exchanges POST /reports here)
data_dir = "regulator-data"              # SQLite database and vault key
# database_url = "postgres://regulator@db.internal/regulator"   # PostgreSQL instead of SQLite
# tls = { cert = "regulator.crt", key = "regulator.key" }       # serve HTTPS

# The services it calls: token issuers (freeze requests), custodians and
# exchanges (travel-rule messages).
[service.peers]
"devnet-issuer" = "http://127.0.0.1:28101"
"devnet-custodian" = "http://127.0.0.1:28103"
"devnet-exchange" = "http://127.0.0.1:28105"

[regulator]
policy_delay_blocks = 20       # a policy published now governs from this many blocks on
structuring_count = 3          # this many trades of one identity just under the large value ...
structuring_margin_bps = 1000  # ... within 10 % below it, in one report, raise an alert
velocity_trades = 500          # more trades than this by one identity in one report raise an alert

# Published as version 1 on the first start if the chain has no AML policy yet.
[regulator.policy]
report_period_secs = 3600
blocked_countries = ["KP", "IR"]
sanctioned = []
limits = [{ asset = "USD", large_value = "1000000", daily_value_max = "10000000", travel_rule_value = "100000" }]
"#;

/// A regulator's config file: the kit's `[service]` and `[regulator]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegulatorConfig {
    /// The kit's table.
    pub service: ServiceConfig,
    /// The regulator's.
    #[serde(default)]
    pub regulator: RegulatorSection,
}

/// The `[regulator]` table: when a policy takes effect, the monitoring
/// rules' thresholds, and the policy to publish first.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegulatorSection {
    /// Blocks between publishing a policy and its taking effect, so that
    /// exchanges see it before it binds them.
    #[serde(default = "delay_default")]
    pub policy_delay_blocks: u64,
    /// The structuring rule: this many trades ...
    #[serde(default = "structuring_count_default")]
    pub structuring_count: u32,
    /// ... each within this many basis points below the large value.
    #[serde(default = "structuring_margin_default")]
    pub structuring_margin_bps: u32,
    /// The velocity rule: more trades than this by one identity in one
    /// report.
    #[serde(default = "velocity_default")]
    pub velocity_trades: u32,
    /// The policy published as version 1 if the chain has none.
    #[serde(default)]
    pub policy: Option<AmlPolicy>,
}

fn delay_default() -> u64 {
    20
}
fn structuring_count_default() -> u32 {
    3
}
fn structuring_margin_default() -> u32 {
    1_000
}
fn velocity_default() -> u32 {
    500
}

impl Default for RegulatorSection {
    fn default() -> Self {
        RegulatorSection {
            policy_delay_blocks: delay_default(),
            structuring_count: structuring_count_default(),
            structuring_margin_bps: structuring_margin_default(),
            velocity_trades: velocity_default(),
            policy: None,
        }
    }
}

impl RegulatorSection {
    /// Checks the values.
    pub fn check(&self) -> anyhow::Result<()> {
        if !(1..=100_000).contains(&self.policy_delay_blocks) {
            anyhow::bail!("regulator.policy_delay_blocks is 1 to 100000");
        }
        if self.structuring_count < 2 {
            anyhow::bail!("regulator.structuring_count is at least 2");
        }
        if !(1..=10_000).contains(&self.structuring_margin_bps) {
            anyhow::bail!("regulator.structuring_margin_bps is 1 to 10000");
        }
        if self.velocity_trades == 0 {
            anyhow::bail!("regulator.velocity_trades is at least 1");
        }
        if let Some(p) = &self.policy {
            policy::check(p).map_err(|e| anyhow::anyhow!("regulator.policy: {}", e.message))?;
        }
        Ok(())
    }

    /// The monitoring rules' thresholds.
    pub fn rules(&self) -> Rules {
        Rules {
            structuring_count: self.structuring_count,
            structuring_margin_bps: self.structuring_margin_bps,
            velocity_trades: self.velocity_trades,
        }
    }
}

impl RegulatorConfig {
    /// Reads and checks the config file at `path`.
    pub fn load(path: &Path) -> anyhow::Result<RegulatorConfig> {
        let mut c: RegulatorConfig = tranche_service::config::read(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        c.service = c.service.resolve(base)?;
        c.regulator.check()?;
        Ok(c)
    }
}

/// The regulator's service.
#[derive(Debug)]
pub struct Regulator {
    /// The kit.
    pub service: Arc<Service>,
    /// Its rules and first policy.
    pub section: RegulatorSection,
    /// Wakes the reconciler when a report arrives.
    pub(crate) arrived: tokio::sync::Notify,
    /// Wakes the deliverer when a freeze is requested.
    pub(crate) freeze_due: tokio::sync::Notify,
    /// Wallet bindings the follower has read or written.
    pub(crate) bindings: follow::Bindings,
}

impl Regulator {
    /// Opens the regulator service of `config`.
    pub async fn open(config: RegulatorConfig) -> anyhow::Result<Arc<Regulator>> {
        let service = Service::open(config.service, MIGRATIONS).await?;
        Regulator::with_service(service, config.regulator)
    }

    /// The regulator on an opened `service`.
    pub fn with_service(
        service: Arc<Service>,
        section: RegulatorSection,
    ) -> anyhow::Result<Arc<Regulator>> {
        section.check()?;
        Ok(Arc::new(Regulator {
            service,
            section,
            arrived: tokio::sync::Notify::new(),
            freeze_due: tokio::sync::Notify::new(),
            bindings: Default::default(),
        }))
    }

    /// Runs the service until SIGINT or SIGTERM: the reconciler, the
    /// freeze requests' deliverer, the kit's tasks and the API. Publishes the configured policy first if the
    /// chain has none.
    pub async fn run(self: Arc<Self>) -> anyhow::Result<()> {
        let router = router(&self);
        let first = tokio::spawn(Arc::clone(&self).publish_first_policy());
        let reconciler = tokio::spawn(Arc::clone(&self).reconcile_continually());
        let freezes = tokio::spawn(Arc::clone(&self).deliver_freezes_continually());
        let ran = Arc::clone(&self.service)
            .run(
                Arc::clone(&self) as Arc<dyn tranche_service::follower::Apply>,
                router,
            )
            .await;
        first.abort();
        reconciler.abort();
        freezes.abort();
        ran
    }

    /// Reconciles each report once the follower has seen its blocks, on
    /// arrival and every 100 ms (a cheap query when nothing waits).
    async fn reconcile_continually(self: Arc<Self>) {
        loop {
            if let Err(e) = self.reconcile_ready().await {
                tracing::warn!(error = %e.message, "reconciling reports");
            }
            tokio::select! {
                _ = self.arrived.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    }

    /// The staff role on whose authority `who` reads (for the audit log).
    pub(crate) fn reader_role(who: &tranche_service::auth::Principal) -> &'static str {
        READERS
            .iter()
            .copied()
            .find(|role| who.roles.iter().any(|x| x == role))
            .unwrap_or(OPERATOR)
    }

    /// Whether `who` is staff who read reports, findings and alerts.
    pub(crate) fn require_reader(
        who: &tranche_service::auth::Principal,
    ) -> Result<(), tranche_service::ServiceError> {
        if READERS.iter().any(|r| who.roles.iter().any(|x| x == r)) {
            Ok(())
        } else {
            who.require(OPERATOR)
        }
    }
}
