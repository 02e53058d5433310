//! The kit every role service stands on: its config, database, PII vault, DID login, signed organisation requests, chain follower, transaction outbox, audit log and HTTP API.
//!
//! A role service (issuer, TSP, custodian, exchange, regulator) is one
//! process per organisation with its own key, data dir and database. The
//! kit gives each the same guarantees:
//! - its database is SQLite in the data dir, or PostgreSQL by URL, with one
//!   set of migrations ([`db`]);
//! - people log in with a DID and a verifiable presentation, never a
//!   password; only a hash of the session token is stored ([`auth`]);
//! - organisations call each other with requests signed by their on-chain
//!   key, authorized by the roles the chain records ([`signed`]);
//! - finalized blocks are applied exactly once, the cursor and the effects in
//!   one database transaction ([`follower`]);
//! - every transaction it signs is recorded before it is sent, and sent
//!   again after a crash until the chain has it ([`outbox`]);
//! - every decision is an entry of a hash-chained audit log whose head is
//!   anchored on chain ([`audit`]).

pub mod aml;
pub mod audit;
pub mod auth;
pub mod config;
pub mod db;
pub mod error;
pub mod follower;
pub mod http;
pub mod metrics;
pub mod outbox;
pub mod service;
pub mod signed;
pub mod travel;

pub use config::ServiceConfig;
pub use db::{Db, Migration};
pub use error::{ServiceCode, ServiceError};
pub use service::Service;

/// Milliseconds since the Unix epoch, by this machine's clock.
#[allow(clippy::disallowed_methods)] // a service is an edge: it reads the clock here, once
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// 32 random bytes from the operating system, as hex.
pub fn random_hex() -> String {
    use tranche_crypto::rand_core::RngCore as _;
    let mut bytes = [0u8; 32];
    tranche_crypto::rand_core::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// SHA-256 of `bytes`, as hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}
