//! Runs the validator's side of consensus: admits transactions to a bounded
//! mempool, builds blocks from it, verifies blocks proposed by others, and
//! executes finalized blocks on the ledger.
//!
//! Pure: the caller brings the clock reading and decides when to propose,
//! vote and commit, so a BFT engine (or a test) drives it.
//!
//! Invariants:
//! - A block an honest node builds passes every honest node's verification
//!   against the same parent state and a clock within the drift allowed.
//! - Every transaction in a valid block has a good signature, is for this
//!   chain, is unexpired at the block's time, and carries its signer's next
//!   nonce; so executing it never meets an envelope rejection.

pub mod block;
pub mod mempool;

pub use block::{
    apply_block, build, execute, select_evidence, verify, verify_certified, BlockError,
    BlockLimits, Executed, Tip,
};
pub use mempool::{weight, AdmitError, Mempool, MempoolLimits};
