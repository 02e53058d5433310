//! Key files on disk: password-encrypted keys in a private folder, written atomically, and where their passwords come from.
//!
//! The command line, the nodes and the role services open their keys here,
//! so a key is read, bounded and decrypted the same way everywhere.

pub mod password;
mod store;

pub use password::{PASSWORD_ENV, PASSWORD_LEN_MIN};
pub use store::{
    check_name, read_bounded, read_keyfile, write_private_atomically, Keystore, Listing,
};

use anyhow::{Context as _, Result};
use std::path::Path;
use tranche_crypto::Keypair;

/// Opens the key file at `path` with the password from `password_file`
/// (else `TRANCHE_PASSWORD`, else a prompt at a terminal).
pub fn open_key_file(path: &Path, password_file: Option<&Path>) -> Result<Keypair> {
    let file = read_keyfile(path)?;
    let pw = password::obtain(password_file, false)?;
    file.open(pw.as_bytes())
        .with_context(|| format!("key file {}", path.display()))
}
