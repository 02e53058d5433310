//! Signs and verifies with ed25519 under domain separation, and seals keys in
//! password-encrypted key files.
//!
//! Invariants:
//! - Every signature covers a domain label and a chain id, so it is valid for
//!   exactly one kind of message on exactly one chain.
//! - A secret key is never written or printed in clear; in memory it is wiped
//!   when dropped.
//! - No randomness is drawn here: callers pass a random source in.

mod keyfile;
mod sign;
mod tx;

pub use keyfile::{CipherSection, KdfParams, KdfSection, KeyFile, KeyFileError, KEYFILE_VERSION};
pub use sign::{
    is_valid_public_key, signing_message, verify, verify_data_integrity, Domain, Keypair,
    SignatureError,
};
pub use tx::{
    sign_transaction, verify_transaction, verify_transactions_batch, SignError, VerifyError,
};

/// Re-exported so callers draw keys from the same `rand_core` version.
pub use rand_core;
