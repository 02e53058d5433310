//! Drives the ledger with commonware's simplex BFT consensus: validators
//! propose blocks from their mempools, vote on each other's blocks after
//! verifying them against the parent state, and apply what is finalized.
//!
//! Invariants:
//! - A validator votes for a block only after verifying every transaction in
//!   it against the state its parent leaves (see `tranche-node`).
//! - Finalized blocks are applied in height order, each exactly once; honest
//!   validators reach the same state root at the same height.

pub mod application;
pub mod archive;
pub mod sim;

pub use application::{Application, Finalized, Mailbox, Reporter, Start};
pub use archive::{Archive, MemoryArchive};

use tranche_types::commonware_codec::Encode;
use tranche_types::{ChainId, Hash};

/// The digest consensus orders: a block's hash.
pub type Digest = commonware_cryptography::sha256::Digest;
/// A validator's consensus identity.
pub type ConsensusKey = commonware_cryptography::ed25519::PublicKey;
/// The certificate scheme: one ed25519 signature per validator.
pub type Scheme = commonware_consensus::simplex::scheme::ed25519::Scheme;

/// The payload consensus starts from: a digest naming the chain's genesis.
pub fn genesis_digest(chain_id: &ChainId) -> Digest {
    commonware_cryptography::sha256::Digest(
        Hash::digest(b"tranche/genesis/v1", &chain_id.encode()).0,
    )
}
