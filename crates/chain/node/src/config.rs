//! A node's configuration file (TOML) and what is derived from it.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tranche_types::PublicKey;

/// The most bytes a configuration or genesis file may have.
pub const FILE_BYTES_MAX: u64 = 1 << 20;

/// One validator node. Relative paths are relative to the file's folder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// The genesis file (JSON), the same on every node of the chain.
    pub genesis: PathBuf,
    /// The node's encrypted key file (as `tranche key new` writes it). Its
    /// key signs blocks and consensus votes and identifies the node to peers.
    pub key: PathBuf,
    /// A file holding the key file's password. Without it the password is
    /// read from the environment variable `TRANCHE_PASSWORD` (as for every
    /// `tranche` command), else asked for at a terminal.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Where the node keeps its chain and consensus journal.
    pub data_dir: PathBuf,
    /// The address other nodes connect to (authenticated and encrypted).
    pub p2p_listen: SocketAddr,
    /// The address of the HTTP node API.
    pub api_listen: SocketAddr,
    /// Every other node: its public key and p2p address. Validators of any
    /// epoch and followers alike; a node connects only to, and accepts
    /// connections only from, the keys listed here that the chain admits
    /// (C-1).
    #[serde(default)]
    pub peers: Vec<Peer>,
    /// Serve the API over TLS with this certificate and key; plain HTTP
    /// without it (for loopback, or behind a TLS-terminating proxy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsFiles>,
    /// The free space, in MiB, the node keeps on its data directory's disk:
    /// it refuses to start with less and stops, saying why, when less is
    /// left ([`crate::disk::MIN_FREE_DISK_MB_DEFAULT`] if not given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_free_disk_mb: Option<u64>,
}

/// The API's TLS identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The certificate chain, PEM, leaf first.
    pub cert: PathBuf,
    /// The private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Another validator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Peer {
    /// Its public key (hex).
    pub key: PublicKey,
    /// Its p2p address.
    pub address: SocketAddr,
}

/// Why a configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The file is not a valid configuration.
    #[error("{path} is not a valid node configuration: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Reads a file of at most [`FILE_BYTES_MAX`] bytes as text.
pub fn read_text(path: &Path) -> Result<String, ConfigError> {
    let err = |reason: String| ConfigError::Read {
        path: path.to_path_buf(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
    if meta.len() > FILE_BYTES_MAX {
        return Err(err(format!(
            "it has {} bytes; at most {FILE_BYTES_MAX} are accepted",
            meta.len()
        )));
    }
    std::fs::read_to_string(path).map_err(|e| err(e.to_string()))
}

impl NodeConfig {
    /// Opens the node's key: its key file, with the password from
    /// `password_file` (else `TRANCHE_PASSWORD`, else a prompt).
    pub fn open_key(&self) -> anyhow::Result<tranche_crypto::Keypair> {
        tranche_keystore::open_key_file(&self.key, self.password_file.as_deref())
    }

    /// Reads and checks a configuration file; relative paths in it become
    /// relative to the file's folder.
    pub fn load(path: &Path) -> Result<NodeConfig, ConfigError> {
        let text = read_text(path)?;
        let invalid = |reason: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        let mut config: NodeConfig = toml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [&mut config.genesis, &mut config.key, &mut config.data_dir] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        let optional = config.password_file.iter_mut().chain(
            config
                .tls
                .iter_mut()
                .flat_map(|t| [&mut t.cert, &mut t.key]),
        );
        for p in optional {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        config.check().map_err(invalid)?;
        Ok(config)
    }

    /// The configuration as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a node configuration serializes")
    }

    fn check(&self) -> Result<(), String> {
        if self.p2p_listen == self.api_listen {
            return Err("p2p_listen and api_listen must differ".into());
        }
        let mut keys = std::collections::BTreeSet::new();
        let mut addresses = std::collections::BTreeSet::new();
        for p in &self.peers {
            if !keys.insert(p.key) {
                return Err(format!("peer {} is listed twice", p.key));
            }
            if !addresses.insert(p.address) {
                return Err(format!("two peers share the address {}", p.address));
            }
        }
        if self.peers.len() > crate::PEERS_MAX {
            return Err(format!(
                "{} peers; at most {} are supported",
                self.peers.len(),
                crate::PEERS_MAX
            ));
        }
        Ok(())
    }
}
