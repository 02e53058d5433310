//! Signs and verifies with ed25519 under domain separation, seals keys in
//! password-encrypted key files, and seals data to an organisation's key.
//!
//! Invariants:
//! - Every signature covers a domain label and a chain id, so it is valid for
//!   exactly one kind of message on exactly one chain.
//! - A secret key is never written or printed in clear; in memory it is wiped
//!   when dropped.
//! - No randomness is drawn here: callers pass a random source in.

mod keyfile;
mod seal;
mod sign;
mod tx;

pub use keyfile::{CipherSection, KdfParams, KdfSection, KeyFile, KeyFileError, KEYFILE_VERSION};
pub use seal::{seal, SealError, Sealed};
pub use sign::{
    is_valid_public_key, signing_message, verify, verify_data_integrity, Domain, Keypair,
    SignatureError,
};
pub use tx::{
    sign_transaction, verify_transaction, verify_transactions_batch, SignError, TxVerifier,
    VerifyError,
};

/// Re-exported so callers draw keys from the same `rand_core` version.
pub use rand_core;
/// Re-exported: batch verification draws its coefficients through this
/// version, the one commonware's runtime provides.
pub use rand_core_010;

/// The operating system's random source, for batch verification outside a
/// runtime that provides one.
pub fn os_rng() -> impl rand_core_010::CryptoRng {
    rand_core_010::UnwrapErr(getrandom::SysRng)
}
