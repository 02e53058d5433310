//! The issuer as a service: follows the chain for the issuance and revocation requests and the closed offerings naming its organisation, takes regulators' freeze requests and its operators' token administration (rules, trusted issuers, documents, approved transfers, pauses, freezes), queues them for approval by its staff (four eyes by default), executes only what was approved, and checks on chain that what it executed equals the request (F5-4, F5-5, F5-6, F5-10, SR-1).
//!
//! Every step is one database transaction: a request is queued with the
//! block that filed it; the approval that completes the quorum records the
//! execution in the outbox with it; the follower marks the execution final
//! and records the check with the block that carried it. So a kill -9 at any
//! moment neither loses an approved execution nor sends it twice, and every
//! decision is in the audit log.

mod administration;
mod api;
mod follow;
mod freeze;
mod queue;

pub use administration::Proposal;
pub use api::router;
pub use queue::{Decision, DecisionView, Kind, RequestView, State};

use serde::Deserialize;
use std::path::Path;
use std::sync::Arc;
use tranche_service::{Migration, Service, ServiceConfig};

/// The issuer's tables.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 100,
        name: "issuer",
        sql: "
CREATE TABLE issuer_requests (
    kind TEXT NOT NULL, request TEXT NOT NULL, tsp TEXT NOT NULL, token TEXT NOT NULL,
    amount TEXT NOT NULL, detail TEXT NOT NULL, state TEXT NOT NULL,
    filed_height BIGINT NOT NULL, moves TEXT, execution_tx TEXT, outcome TEXT,
    checked TEXT, updated_ms BIGINT NOT NULL,
    PRIMARY KEY (kind, request));
CREATE INDEX issuer_requests_by_state ON issuer_requests (state, kind, request);
CREATE TABLE issuer_decisions (
    kind TEXT NOT NULL, request TEXT NOT NULL, staff TEXT NOT NULL, credential TEXT NOT NULL,
    decision TEXT NOT NULL, reason TEXT NOT NULL, at_ms BIGINT NOT NULL,
    PRIMARY KEY (kind, request, staff));
",
    },
    Migration {
        version: 101,
        name: "issuer execution groups",
        // The last nonce of the transactions an execution sent together.
        sql: "ALTER TABLE issuer_requests ADD COLUMN pending_nonce BIGINT;",
    },
];

/// The staff role that may approve or refuse.
pub const OPERATOR: &str = "staff:operator";
/// Most distinct approvals a config may ask for.
pub const APPROVALS_MAX: u32 = 10;

/// An example config, shown by `tranche issuer --help`.
pub const EXAMPLE_CONFIG: &str = r#"[service]
org = "devnet-issuer"                 # the organisation, as the chain knows it
key_file = "keys/devnet-issuer.key"   # its key: the one the chain holds for org
password_file = "password"            # else TRANCHE_PASSWORD, else a prompt
node = "http://127.0.0.1:27101"       # its node's API (https:// with node_ca = "ca.pem")
listen = "127.0.0.1:28101"            # where this service's API listens
data_dir = "issuer-data"              # SQLite database and vault key
# database_url = "postgres://issuer@db.internal/issuer"   # PostgreSQL instead of SQLite
# tls = { cert = "issuer.crt", key = "issuer.key" }       # serve HTTPS
# anchor_interval_secs = 60           # how often the audit log's head goes on chain

[issuer]
approvals_required = 2                # distinct operators who must approve (four eyes)
"#;

/// The `[issuer]` table.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerSection {
    /// Distinct staff approvals each request needs.
    #[serde(default = "two")]
    pub approvals_required: u32,
}

fn two() -> u32 {
    2
}

impl Default for IssuerSection {
    fn default() -> Self {
        IssuerSection {
            approvals_required: two(),
        }
    }
}

/// The issuer service's config file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// What every service has.
    pub service: ServiceConfig,
    /// The issuer's own settings.
    #[serde(default)]
    pub issuer: IssuerSection,
}

impl IssuerConfig {
    /// Reads and checks the config file at `path`.
    pub fn load(path: &Path) -> anyhow::Result<IssuerConfig> {
        let mut c: IssuerConfig = tranche_service::config::read(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        c.service = c.service.resolve(base)?;
        if !(1..=APPROVALS_MAX).contains(&c.issuer.approvals_required) {
            anyhow::bail!("issuer.approvals_required must be 1 to {APPROVALS_MAX}");
        }
        Ok(c)
    }
}

/// The issuer service.
#[derive(Debug)]
pub struct Issuer {
    /// The kit.
    pub service: Arc<Service>,
    /// Distinct approvals each request needs.
    pub approvals_required: u32,
}

impl Issuer {
    /// Opens the issuer service of `config`.
    pub async fn open(config: IssuerConfig) -> anyhow::Result<Arc<Issuer>> {
        let service = Service::open(config.service, MIGRATIONS).await?;
        Ok(Arc::new(Issuer {
            service,
            approvals_required: config.issuer.approvals_required,
        }))
    }

    /// Runs the service until SIGINT or SIGTERM.
    pub async fn run(self: Arc<Self>) -> anyhow::Result<()> {
        let router = router(&self);
        Arc::clone(&self.service)
            .run(
                Arc::clone(&self) as Arc<dyn tranche_service::follower::Apply>,
                router,
            )
            .await
    }
}
