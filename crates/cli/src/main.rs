//! Runs the `tranche` command: keys, offline signing and inspection of
//! transactions, identities and credentials, benchmarks.
// Doc comments here are `--help` text for people at a terminal, not rustdoc.
#![allow(rustdoc::bare_urls, rustdoc::invalid_html_tags)]

mod commands;
mod keystore;
mod password;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Tranche: a permissioned network for security tokens.
///
/// Keys live in <HOME>/keys as password-encrypted files; nothing here needs a
/// network, so keys can be kept and used on an offline machine (cold storage).
#[derive(Debug, Parser)]
#[command(name = "tranche", version, propagate_version = true)]
struct Cli {
    /// Folder for keys and local state.
    #[arg(long, global = true, env = "TRANCHE_HOME", default_value_os_t = default_home())]
    home: PathBuf,

    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Make, list and show signing keys.
    #[command(subcommand)]
    Key(commands::key::KeyCommand),
    /// Build, sign offline and inspect transactions.
    #[command(subcommand)]
    Tx(commands::tx::TxCommand),
    /// Decentralized identifiers (did:key) for people and organisations.
    #[command(subcommand)]
    Did(commands::identity::DidCommand),
    /// Issue and verify verifiable credentials (KYC, accreditation, jurisdiction, LEI).
    #[command(subcommand)]
    Vc(commands::identity::VcCommand),
    /// Present credentials to a verifier and verify presentations.
    #[command(subcommand)]
    Vp(commands::identity::VpCommand),
    /// Run whole networks of validators in the deterministic simulator.
    ///
    /// Each seed runs --validators validators (--down of them crashed from the
    /// start) on commonware's simplex consensus over a simulated network with
    /// latency and jitter, until every running validator has finalized --txs
    /// transactions and a few blocks; then checks that all agree on every block
    /// and state root. A failing seed is printed, and --seed replays it exactly.
    ///
    /// Example:
    ///   tranche sim --seeds 50 --validators 7 --down 2
    #[command(verbatim_doc_comment)]
    Sim(commands::sim::SimArgs),
    /// Measure performance against a baseline in the same run.
    #[command(subcommand)]
    Bench(commands::bench::BenchCommand),
}

fn default_home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".tranche")
}

/// Output settings every command shares.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The home folder.
    pub home: PathBuf,
    /// JSON output.
    pub json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ctx = Ctx {
        home: cli.home,
        json: cli.json,
    };
    let result = match cli.command {
        Command::Key(c) => commands::key::run(&ctx, c),
        Command::Tx(c) => commands::tx::run(&ctx, c),
        Command::Bench(c) => commands::bench::run(c),
        Command::Sim(a) => commands::sim::run_sim(a),
        Command::Did(c) => commands::identity::run_did(&ctx, c),
        Command::Vc(c) => commands::identity::run_vc(&ctx, c),
        Command::Vp(c) => commands::identity::run_vp(&ctx, c),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            if ctx.json {
                let body = serde_json::json!({ "error": format!("{e:#}") });
                eprintln!("{body}");
            } else {
                eprintln!("error: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}
