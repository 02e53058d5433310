//! Drives the ledger with commonware's simplex BFT consensus: validators
//! propose blocks from their mempools, vote on each other's blocks after
//! verifying them against the parent state, and apply what is finalized.
//!
//! Invariants:
//! - A validator votes for a block only after verifying every transaction in
//!   it against the state its parent leaves (see `tranche-block`).
//! - Finalized blocks are applied in height order, each exactly once; honest
//!   validators reach the same state root at the same height.

pub mod application;
pub mod archive;
pub mod orchestrator;
pub mod witness;

pub use application::{
    Application, EpochStart, Finalized, Mailbox, Misbehaviour, Pairs, Reporter, Start,
};
pub use orchestrator::{launch, EngineChannels, Launched, Orchestrator};
pub use tranche_storage::{Archive, MemoryArchive};

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

/// The engine settings every Tranche validator uses, simulated or real:
/// round-robin leaders, a 1 s leader timeout (well above
/// [`application::EMPTY_BLOCK_INTERVAL`]), and the consensus journal in
/// `partition` of the runtime's storage; `epoch` builds on `floor`, the
/// previous epoch's last block (the genesis digest for the first).
pub fn engine_config<B>(
    scheme: Scheme,
    blocker: B,
    mailbox: Mailbox,
    reporter: Reporter,
    partition: String,
    floor: Digest,
    epoch: u64,
) -> commonware_consensus::simplex::Config<
    Scheme,
    commonware_consensus::simplex::elector::RoundRobin<commonware_cryptography::Sha256>,
    B,
    Digest,
    Mailbox,
    Mailbox,
    Reporter,
    commonware_parallel::Sequential,
>
where
    B: commonware_p2p::Blocker<PublicKey = ConsensusKey>,
{
    use commonware_consensus::simplex::{Floor, ForwardPolicy, SkipPolicy};
    use commonware_consensus::types::{Epoch, ViewDelta};
    use commonware_utils::{NZDuration, NZUsize, NZU16};
    use std::time::Duration;
    commonware_consensus::simplex::Config {
        scheme,
        elector: Default::default(),
        blocker,
        automaton: mailbox.clone(),
        relay: mailbox,
        reporter,
        strategy: commonware_parallel::Sequential,
        partition,
        mailbox_size: NZUsize!(4096),
        epoch: Epoch::new(epoch),
        floor: Floor::Genesis(floor),
        leader_timeout: Duration::from_secs(1),
        certification_timeout: Duration::from_secs(2),
        timeout_retry: Duration::from_secs(5),
        fetch_timeout: NZDuration!(Duration::from_secs(1)),
        fetch_retry_delay: Duration::from_millis(100),
        view_retention: ViewDelta::new(10),
        // No early nullify of a leader not heard from lately: an epoch's
        // engine starts knowing nobody's activity, and once a quorum's first
        // votes are in, the next leader whose own are still queued counted
        // as inactive. Two validators nullifying the new epoch's second view
        // that way stalled the chain for two leader timeouts. A validator
        // that is down costs a leader timeout in each view it leads instead.
        skip: SkipPolicy::Disabled,
        replay_buffer: NZUsize!(1024 * 1024),
        write_buffer: NZUsize!(1024 * 1024),
        page_cache: commonware_runtime::buffer::paged::CacheRef::new(NZU16!(4096), NZUsize!(64)),
        forward: ForwardPolicy::Disabled,
        track_historical_votes: false,
    }
}
