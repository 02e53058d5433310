//! One module per command group.

/// Returns a [`Usage`] error: the command line is wrong (exit 2).
macro_rules! usage {
    ($($arg:tt)*) => {
        return Err($crate::commands::Usage(format!($($arg)*)).into())
    };
}
pub(crate) use usage;

pub mod audit;
pub mod bench;
pub mod client;
pub mod devnet;
pub mod identity;
pub mod key;
pub mod node;
pub mod services;
pub mod sim;
pub mod travel;
pub mod tx;
pub mod verify;

use crate::Ctx;
use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use tranche_crypto::{KeyFile, Keypair};
use tranche_keystore::password;
use tranche_keystore::{read_keyfile, Keystore};

/// The exit codes every command uses (listed in `tranche --help`).
pub mod exit {
    /// Anything else went wrong: a file, a password, the network, a node fault.
    pub const FAILURE: u8 = 1;
    /// The command line is wrong: a missing, unknown or contradictory argument.
    pub const USAGE: u8 = 2;
    /// The chain or the node refused the transaction; the message or receipt says why.
    pub const REJECTED: u8 = 3;
    /// What was asked for does not exist on the node (yet).
    pub const NOT_FOUND: u8 = 4;
}

/// An error in how the command was called (exits [`exit::USAGE`]).
#[derive(Debug)]
pub struct Usage(pub String);

/// The node does not have what was asked for (exits [`exit::NOT_FOUND`]).
#[derive(Debug)]
pub struct NotFound(pub String);

/// The node or the ledger refused a transaction (exits [`exit::REJECTED`]).
#[derive(Debug)]
pub struct Refused(pub String);

macro_rules! message_error {
    ($($t:ident),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl std::error::Error for $t {}
    )*};
}
message_error!(Usage, NotFound, Refused);

/// The exit code for an error: the most specific kind found in its chain.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if cause.is::<Usage>() {
            return exit::USAGE;
        }
        if cause.is::<NotFound>() {
            return exit::NOT_FOUND;
        }
        if cause.is::<Refused>() {
            return exit::REJECTED;
        }
    }
    exit::FAILURE
}

/// Which key signs.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// The key's name in the keystore.
    #[arg(
        long,
        conflicts_with = "key_file",
        required_unless_present = "key_file"
    )]
    pub key: Option<String>,
    /// A key file anywhere on disk, instead of a keystore name.
    #[arg(long)]
    pub key_file: Option<PathBuf>,
    /// Read the password from the first line of this file (else TRANCHE_PASSWORD, else a prompt).
    #[arg(long)]
    pub password_file: Option<PathBuf>,
}

/// The key file named by `args`, and where it is.
pub fn load_key_file(ctx: &Ctx, args: &KeyArgs) -> Result<(String, KeyFile)> {
    match (&args.key, &args.key_file) {
        (Some(name), _) => {
            let (path, file) = Keystore::new(&ctx.home).load(name)?;
            Ok((path.display().to_string(), file))
        }
        (None, Some(path)) => Ok((path.display().to_string(), read_keyfile(path)?)),
        (None, None) => Err(Usage("give --key NAME or --key-file PATH".into()).into()),
    }
}

/// Opens the key named by `args` with its password.
pub fn open_key(ctx: &Ctx, args: &KeyArgs) -> Result<Keypair> {
    let (path, file) = load_key_file(ctx, args)?;
    let pw = password::obtain(args.password_file.as_deref(), false)?;
    file.open(pw.as_bytes())
        .with_context(|| format!("key file {path}"))
}

/// Prints `value` as pretty JSON on standard output.
pub fn print_json(value: &impl serde::Serialize) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("output values always serialize")
    );
}

/// The wall clock, in milliseconds since 1970.
#[allow(clippy::disallowed_methods)] // the CLI is the edge: it may read the clock
pub fn now() -> tranche_types::Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    tranche_types::Timestamp(u64::try_from(ms).unwrap_or(u64::MAX))
}
