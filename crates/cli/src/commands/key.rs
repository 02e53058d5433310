//! `tranche key`: make, list, show and export keys.

use super::print_json;
use crate::Ctx;
use anyhow::{Context, Result};
use clap::Subcommand;
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;
use tranche_crypto::rand_core::OsRng;
use tranche_crypto::{KdfParams, KeyFile, Keypair};
use tranche_keystore::password;
use tranche_keystore::{write_private_atomically, Keystore};

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Make a new ed25519 key, sealed in a password-encrypted key file.
    ///
    /// The secret never touches disk in clear: it is encrypted with AES-256-GCM
    /// under a key stretched from your password with Argon2id (64 MiB, 3 passes).
    /// There is no way to recover a key whose password is lost: keep a backup of
    /// the file and the password apart.
    ///
    /// Example:
    ///   tranche key new alice --password-file ./alice.pw
    #[command(verbatim_doc_comment)]
    New {
        /// A name for the key: letters, digits, '-', '_' or '.'.
        name: String,
        /// Read the password from the first line of this file (else TRANCHE_PASSWORD, else a prompt).
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// List the keys in the keystore with their wallet addresses.
    ///
    /// Example:
    ///   tranche key list --json
    #[command(verbatim_doc_comment)]
    List,
    /// Show a key's public key, wallet address and file; needs no password.
    ///
    /// Example:
    ///   tranche key show alice
    #[command(verbatim_doc_comment)]
    Show {
        /// The key's name.
        name: String,
    },
    /// Write a key's public part (public key and address) to share with others.
    ///
    /// The output holds nothing secret. Without --out it goes to standard output.
    ///
    /// Example:
    ///   tranche key export-public alice --out alice.pub.json
    #[command(verbatim_doc_comment)]
    ExportPublic {
        /// The key's name.
        name: String,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Serialize)]
struct KeyInfo {
    name: String,
    address: String,
    public_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
}

fn info(name: &str, file: &KeyFile, path: Option<&std::path::Path>) -> KeyInfo {
    KeyInfo {
        name: name.to_string(),
        address: file.address.to_string(),
        public_key: file.public_key.to_hex(),
        file: path.map(|p| p.display().to_string()),
    }
}

fn print_info(ctx: &Ctx, i: &KeyInfo) {
    if ctx.json {
        print_json(i);
    } else {
        println!("name:        {}", i.name);
        println!("address:     {}", i.address);
        println!("public key:  {}", i.public_key);
        if let Some(f) = &i.file {
            println!("file:        {f}");
        }
    }
}

/// Makes a new key named `name` in the keystore, sealed with a password.
pub fn create(
    ctx: &Ctx,
    name: &str,
    password_file: Option<&std::path::Path>,
) -> Result<(PathBuf, KeyFile)> {
    let store = Keystore::new(&ctx.home);
    tranche_keystore::check_name(name)?;
    if store.path(name).exists() {
        // Fail before asking for a password.
        anyhow::bail!(
            "a key named {name:?} already exists at {}; choose another name (keys are never overwritten)",
            store.path(name).display()
        );
    }
    let pw = password::obtain(password_file, true)?;
    password::check_new(&pw)?;
    let key = Keypair::generate(&mut OsRng);
    let file = KeyFile::seal(&key, pw.as_bytes(), KdfParams::DEFAULT, &mut OsRng)?;
    let path = store.create(name, &file)?;
    Ok((path, file))
}

pub fn run(ctx: &Ctx, cmd: KeyCommand) -> Result<ExitCode> {
    let store = Keystore::new(&ctx.home);
    match cmd {
        KeyCommand::New {
            name,
            password_file,
        } => {
            let (path, file) = create(ctx, &name, password_file.as_deref())?;
            print_info(ctx, &info(&name, &file, Some(&path)));
        }
        KeyCommand::List => {
            let tranche_keystore::Listing { keys, problems } = store.list()?;
            for p in &problems {
                eprintln!("warning: skipped {p}");
            }
            if ctx.json {
                let all: Vec<KeyInfo> = keys
                    .iter()
                    .map(|(n, f)| info(n, f, Some(&store.path(n))))
                    .collect();
                print_json(&all);
            } else if keys.is_empty() {
                println!(
                    "no keys in {}; make one with `tranche key new NAME`",
                    ctx.home.join("keys").display()
                );
            } else {
                for (name, f) in &keys {
                    println!("{name:<24} {}", f.address);
                }
            }
        }
        KeyCommand::Show { name } => {
            let (path, file) = store.load(&name)?;
            print_info(ctx, &info(&name, &file, Some(&path)));
        }
        KeyCommand::ExportPublic { name, out } => {
            let (_, file) = store.load(&name)?;
            let public = info(&name, &file, None);
            let text = serde_json::to_string_pretty(&public)? + "\n";
            match out {
                Some(path) => {
                    write_private_atomically(&path, text.as_bytes())
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    if !ctx.json {
                        println!("wrote public key of {name:?} to {}", path.display());
                    }
                }
                None => print!("{text}"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
