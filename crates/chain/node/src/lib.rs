//! A Tranche validator node: commonware simplex consensus over authenticated,
//! encrypted p2p, finalized blocks kept in crash-safe storage, and the HTTP
//! node API that clients, role services and other organisations read from.
//!
//! Every node of the chain is a validator of the genesis committee (the
//! ledger's election at genesis); its key signs its votes and blocks and
//! identifies it to its peers.

mod admission;
pub mod api;
pub mod config;
pub mod disk;
pub mod service;

pub use config::{NodeConfig, Peer, TlsFiles};
pub use service::{run, NodeError};

/// The most other nodes one node may know (validators of any epoch and
/// followers).
pub const PEERS_MAX: usize = 256;
