//! What every role service's config file holds, in its `[service]` table.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Seconds between audit anchors unless the config says otherwise.
pub const ANCHOR_INTERVAL_SECS_DEFAULT: u64 = 60;
/// Milliseconds between polls of the node for new blocks.
pub const POLL_MS_DEFAULT: u64 = 250;

/// A certificate chain and its private key, PEM files.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The certificate chain.
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
}

/// The `[service]` table: who the service acts for, where its node, data and
/// database are, and how it serves. Relative paths are read from the config
/// file's folder.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// The organisation the service acts for (its on-chain id).
    pub org: String,
    /// The organisation's password-encrypted key file (`tranche key new`).
    pub key_file: PathBuf,
    /// A file holding the key's password; else `TRANCHE_PASSWORD`, else a prompt.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// The organisation's node's API, e.g. `https://127.0.0.1:27101`.
    pub node: String,
    /// The PEM CA certificate the node's TLS certificate chains to.
    #[serde(default)]
    pub node_ca: Option<PathBuf>,
    /// Where the service's API listens.
    pub listen: SocketAddr,
    /// The domain people's presentations must be bound to; the
    /// organisation's id unless set.
    #[serde(default)]
    pub domain: Option<String>,
    /// The service's data dir (its SQLite database, its vault key).
    pub data_dir: PathBuf,
    /// `postgres://user@host:port/db` to use PostgreSQL; SQLite in the data
    /// dir unless set.
    #[serde(default)]
    pub database_url: Option<String>,
    /// The vault's master key file (64 hex digits); `vault.key` in the data
    /// dir unless set, made on the first start.
    #[serde(default)]
    pub vault_key_file: Option<PathBuf>,
    /// Serve the API over TLS with this certificate and key.
    #[serde(default)]
    pub tls: Option<TlsFiles>,
    /// DIDs of the credential issuers (KYC providers, ...) whose credentials
    /// people may present, beside the organisation's own staff credentials.
    #[serde(default)]
    pub trusted_issuers: Vec<String>,
    /// Seconds between anchors of the audit log's head on chain.
    #[serde(default = "anchor_interval_default")]
    pub anchor_interval_secs: u64,
    /// Milliseconds between polls of the node for new blocks.
    #[serde(default = "poll_default")]
    pub poll_ms: u64,
    /// Other organisations' services this one calls (freeze requests,
    /// travel-rule messages), by on-chain organisation id:
    /// `[service.peers]` `"devnet-exchange" = "https://…"`.
    #[serde(default)]
    pub peers: std::collections::BTreeMap<String, String>,
}

fn anchor_interval_default() -> u64 {
    ANCHOR_INTERVAL_SECS_DEFAULT
}

fn poll_default() -> u64 {
    POLL_MS_DEFAULT
}

impl ServiceConfig {
    /// Makes relative paths relative to `base` (the config file's folder)
    /// and checks the values a typo would otherwise make fail later.
    pub fn resolve(mut self, base: &Path) -> anyhow::Result<ServiceConfig> {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.key_file);
        fix(&mut self.data_dir);
        for p in [
            self.password_file.as_mut(),
            self.node_ca.as_mut(),
            self.vault_key_file.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            fix(p);
        }
        if let Some(tls) = self.tls.as_mut() {
            fix(&mut tls.cert);
            fix(&mut tls.key);
        }
        if self.org.is_empty() || self.org.len() > 64 {
            anyhow::bail!("service.org must be the organisation's id, 1 to 64 characters");
        }
        if !(1..=86_400).contains(&self.anchor_interval_secs) {
            anyhow::bail!("service.anchor_interval_secs must be 1 to 86400");
        }
        if !(10..=60_000).contains(&self.poll_ms) {
            anyhow::bail!("service.poll_ms must be 10 to 60000");
        }
        for (org, url) in &self.peers {
            if org.is_empty()
                || org.len() > 64
                || !(url.starts_with("http://") || url.starts_with("https://"))
                || url.len() > 512
                || url.chars().any(char::is_whitespace)
            {
                anyhow::bail!(
                    "service.peers.{org}: an organisation's id and its service's http:// or https:// URL of at most 512 bytes"
                );
            }
        }
        for did in &self.trusted_issuers {
            tranche_identity::DidKey::parse(did)
                .map_err(|e| anyhow::anyhow!("service.trusted_issuers: {did}: {e}"))?;
        }
        Ok(self)
    }

    /// The domain presentations are bound to.
    pub fn domain(&self) -> &str {
        self.domain.as_deref().unwrap_or(&self.org)
    }

    /// The database URL: the configured one, else SQLite in the data dir.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("service.db").display()
            ),
        }
    }
}

/// Reads a role service's config file: TOML, at most 1 MiB, into `T`, whose
/// `[service]` table is resolved against the file's folder by the caller.
pub fn read<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let bytes = tranche_keystore::read_bounded(path, 1 << 20)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| anyhow::anyhow!("{} is not UTF-8 text", path.display()))?;
    toml::from_str(text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Reads only the `[service]` table of a role service's config file,
/// resolved: what a supervisor (the devnet) needs of any role.
pub fn read_service(path: &Path) -> anyhow::Result<ServiceConfig> {
    #[derive(Deserialize)]
    struct Only {
        service: ServiceConfig,
    }
    let only: Only = read(path)?;
    only.service
        .resolve(path.parent().unwrap_or(Path::new(".")))
}
