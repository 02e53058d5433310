//! The tokenization service provider as a service: owners register assets with an ownership credential (ST-6), offerings open only on an appraisal within the network's policy (SR-6), investors' wallets are bound to their DIDs after their presentation (SR-5), and each offering's issuance is verified on chain and recorded in the audit log (SR-1).
//!
//! What reaches the chain is DIDs and digests: the asset's description and
//! the owner's details stay in the vault. Every transaction the TSP signs
//! is recorded in the outbox with the decision that makes it, and the
//! follower records what the chain made of it — and of the appraisals,
//! closes, issuances and releases of the TSP's offerings — in the same
//! database transaction as the block, so a kill -9 at any moment neither
//! loses nor doubles a step.

mod api;
mod assets;
mod corporate;
mod follow;
mod offerings;
mod subscriptions;

pub use api::router;
pub use assets::{AssetView, NewAsset};
pub use corporate::{ActionView, NewDistribution, NewRedemption};
pub use offerings::{NewOffering, OfferingStatus};
pub use subscriptions::SubscriptionView;

use serde::Deserialize;
use std::path::Path;
use std::sync::Arc;
use tranche_service::{Migration, Service, ServiceConfig};

/// The TSP's tables.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 100,
        name: "tsp",
        sql: "
CREATE TABLE tsp_assets (
    asset TEXT PRIMARY KEY, owner TEXT NOT NULL, kind TEXT NOT NULL, price TEXT NOT NULL,
    description_digest TEXT NOT NULL, credential_digest TEXT NOT NULL, nonce BIGINT NOT NULL,
    tx TEXT NOT NULL, state TEXT NOT NULL, note TEXT NOT NULL, updated_ms BIGINT NOT NULL);
CREATE INDEX tsp_assets_by_nonce ON tsp_assets (nonce);
CREATE TABLE tsp_wallets (
    wallet TEXT PRIMARY KEY, did TEXT NOT NULL, nonce BIGINT NOT NULL, tx TEXT NOT NULL,
    state TEXT NOT NULL, at_ms BIGINT NOT NULL);
CREATE INDEX tsp_wallets_by_nonce ON tsp_wallets (nonce);
CREATE TABLE tsp_offerings (
    offering TEXT PRIMARY KEY, asset TEXT NOT NULL, token TEXT NOT NULL, terms TEXT NOT NULL,
    staff TEXT NOT NULL, nonce BIGINT NOT NULL, tx TEXT NOT NULL, state TEXT NOT NULL,
    verified TEXT, note TEXT NOT NULL, updated_ms BIGINT NOT NULL);
CREATE INDEX tsp_offerings_by_nonce ON tsp_offerings (nonce);
",
    },
    Migration {
        version: 101,
        name: "tsp corporate actions",
        sql: "
CREATE TABLE tsp_actions (
    kind TEXT NOT NULL, id TEXT NOT NULL, token TEXT NOT NULL, staff TEXT NOT NULL,
    nonce BIGINT NOT NULL, state TEXT NOT NULL, verified TEXT, note TEXT NOT NULL,
    updated_ms BIGINT NOT NULL, PRIMARY KEY (kind, id));
CREATE INDEX tsp_actions_by_nonce ON tsp_actions (nonce);
",
    },
    Migration {
        version: 102,
        name: "tsp distribution deadlines",
        sql: "ALTER TABLE tsp_actions ADD COLUMN deadline_ms BIGINT;",
    },
    Migration {
        version: 103,
        name: "tsp relayed subscriptions",
        sql: "
CREATE TABLE tsp_subscriptions (
    tx TEXT PRIMARY KEY, offering TEXT NOT NULL, did TEXT NOT NULL, wallet TEXT NOT NULL,
    units TEXT NOT NULL, signed TEXT NOT NULL, state TEXT NOT NULL, outcome TEXT,
    height BIGINT, received_ms BIGINT NOT NULL);
CREATE INDEX tsp_subscriptions_by_state ON tsp_subscriptions (state, tx);
",
    },
];

/// The staff role that opens offerings.
pub const OPERATOR: &str = "staff:operator";
/// Staff roles that read every asset and offering.
pub const READERS: &[&str] = &["staff:operator", "staff:auditor"];
/// The credential an owner presents: from an asset registry the TSP trusts.
pub const OWNERSHIP: &str = "AssetOwnershipCredential";
/// The credentials an investor presents to have a wallet bound.
pub const INVESTOR: &[&str] = &["KycCredential", "JurisdictionCredential"];

/// An example config, shown by `tranche tsp --help`.
pub const EXAMPLE_CONFIG: &str = r#"[service]
org = "devnet-tsp"                    # the organisation, as the chain knows it (role Tsp)
key_file = "keys/devnet-tsp.key"      # its key: the one the chain holds for org
password_file = "password"            # else TRANCHE_PASSWORD, else a prompt
node = "http://127.0.0.1:27100"       # its node's API (https:// with node_ca = "ca.pem")
listen = "127.0.0.1:28103"            # where this service's API listens
data_dir = "tsp-data"                 # SQLite database and vault key
# asset registries (ownership credentials) and KYC providers (KYC, jurisdiction)
trusted_issuers = ["did:key:z6Mk...", "did:key:z6Mk..."]
# database_url = "postgres://tsp@db.internal/tsp"     # PostgreSQL instead of SQLite
# tls = { cert = "tsp.crt", key = "tsp.key" }         # serve HTTPS
"#;

/// The TSP service's config file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TspConfig {
    /// What every service has.
    pub service: ServiceConfig,
}

impl TspConfig {
    /// Reads and checks the config file at `path`.
    pub fn load(path: &Path) -> anyhow::Result<TspConfig> {
        let mut c: TspConfig = tranche_service::config::read(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        c.service = c.service.resolve(base)?;
        Ok(c)
    }
}

/// The TSP's service.
#[derive(Debug)]
pub struct Tsp {
    /// The kit.
    pub service: Arc<Service>,
    /// Where investors' subscriptions wait to be sent on.
    relay: subscriptions::Relay,
}

impl Tsp {
    /// Opens the TSP service of `config`.
    pub async fn open(config: TspConfig) -> anyhow::Result<Arc<Tsp>> {
        let service = Service::open(config.service, MIGRATIONS).await?;
        let relay = subscriptions::Relay::start(
            service.db.clone(),
            service.node.clone(),
            service.chain_id.clone(),
        );
        Ok(Arc::new(Tsp { service, relay }))
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
