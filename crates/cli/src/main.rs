//! Runs the `tranche` command: keys, offline signing and inspection of
//! transactions, identities and credentials, benchmarks.
// Doc comments here are `--help` text for people at a terminal, not rustdoc.
#![allow(rustdoc::bare_urls, rustdoc::invalid_html_tags)]

mod commands;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Tranche: a permissioned network for security tokens.
///
/// Keys live in <HOME>/keys as password-encrypted files; nothing here needs a
/// network, so keys can be kept and used on an offline machine (cold storage).
#[derive(Debug, Parser)]
#[command(
    name = "tranche",
    version,
    propagate_version = true,
    after_help = "Exit codes, the same for every command:\n  \
        0  done (a transaction: applied)\n  \
        1  failed: a file, a password, the network or a node fault; the message says which\n  \
        2  usage: a missing, unknown or contradictory argument\n  \
        3  rejected: the chain refused the transaction (the receipt's code says why) or the node refused to take it\n  \
        4  not found: the node has no such transaction, block, wallet, token, ..."
)]
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
    /// Run a local network with every role: four organisations (TSP, issuer,
    /// exchange, regulator), each with its validator node as its own process,
    /// the custodian's node following them, and the role services.
    ///
    /// The first run creates keys (encrypted, password in <DATA_DIR>/password),
    /// a genesis with those four plus a custodian, a KYC claim issuer, an
    /// appraiser, an escrow bank and an asset registry, a node.toml per node
    /// and a config per service with its staff; then it starts one
    /// `tranche node` per node on loopback, waits until they finalize, starts
    /// the issuer's, the bank's, the TSP's, the custodian's, the exchange's and
    /// the regulator's services (SQLite), writes <DATA_DIR>/devnet.json and
    /// prints the API URLs. It stays until Ctrl-C; run again on the same
    /// --data-dir to resume the same chain.
    ///
    /// Example:
    ///   tranche devnet --data-dir ./devnet
    ///   tranche query status --node http://127.0.0.1:27100
    #[command(verbatim_doc_comment)]
    Devnet(commands::devnet::DevnetArgs),
    /// Run an issuer's service: its approval queue for the issuance and
    /// revocation requests naming it (four eyes by default), executed only
    /// once approved, checked on chain; or keep its staff credentials.
    ///
    /// Its own process, key, data dir and database (SQLite by default,
    /// PostgreSQL by database_url). Staff log in with `tranche service login`
    /// and a staff credential from `tranche issuer ... staff add`.
    ///
    /// Examples:
    ///   tranche issuer --config issuer.toml
    ///   tranche issuer --config issuer.toml staff add --subject did:key:z6Mk... --out op.json
    #[command(verbatim_doc_comment,
              after_long_help = format!("An example config (--config FILE):\n\n{}", tranche_issuer::EXAMPLE_CONFIG))]
    Issuer(commands::services::IssuerArgs),
    /// Run an escrow bank's service: customers' accounts by DID, its deposit
    /// token minted 1:1 with the money its operators credit and redeemed for
    /// payouts, offerings' escrow closed (refunds below the soft cap) and
    /// released to the owner as the ledger permits; or keep its staff
    /// credentials.
    ///
    /// Its operators' deposits and payouts stand for the bank's core banking
    /// system. Customers open an account with a KYC credential from a
    /// trusted issuer (`tranche service login`, then POST /accounts).
    ///
    /// Examples:
    ///   tranche bank --config bank.toml
    ///   tranche bank --config bank.toml staff add --subject did:key:z6Mk... --out op.json
    #[command(verbatim_doc_comment,
              after_long_help = format!("An example config (--config FILE):\n\n{}", tranche_bank::EXAMPLE_CONFIG))]
    Bank(commands::services::RoleArgs),
    /// Run a TSP's service: owners register assets with an ownership
    /// credential from a trusted asset registry (the description in the
    /// vault, its digest on chain), investors with KYC and jurisdiction
    /// credentials have wallets bound, operators open offerings only on an
    /// appraisal within the network's policy, and each offering's issuance
    /// is verified on chain (SR-1); or keep its staff credentials.
    ///
    /// Examples:
    ///   tranche tsp --config tsp.toml
    ///   tranche tsp --config tsp.toml staff add --subject did:key:z6Mk... --out op.json
    #[command(verbatim_doc_comment,
              after_long_help = format!("An example config (--config FILE):\n\n{}", tranche_tsp::EXAMPLE_CONFIG))]
    Tsp(commands::services::RoleArgs),
    /// Run a custodian's service: one custodial wallet per holder (opened on
    /// the holder's consent, for a KYC credential from a trusted issuer),
    /// transfers out only on the holder's signed authorization within the
    /// custodian's policy, distributions claimed for its holders, an audit
    /// trail with proofs, and a notice of every transfer over a live stream
    /// and signed webhooks (SR-3); or keep its staff credentials.
    ///
    /// A holder signs authorizations offline with `tranche did
    /// authorize-transfer` and hands them in with `tranche service call`.
    ///
    /// Examples:
    ///   tranche custodian --config custodian.toml
    ///   tranche custodian --config custodian.toml staff add --subject did:key:z6Mk... --out op.json
    #[command(verbatim_doc_comment,
              after_long_help = format!("An example config (--config FILE):\n\n{}", tranche_custodian::EXAMPLE_CONFIG))]
    Custodian(commands::services::RoleArgs),
    /// Run an exchange's service: traders onboarded by presentation with
    /// wallets bound to their DIDs, listings taken from the chain (SR-2),
    /// orders checked and reserved before the matching engine and journaled
    /// before they are acknowledged, the trade ledger, and each trade
    /// settled on chain as delivery versus payment (F6-2..F6-7, F6-11); or
    /// keep its staff credentials.
    ///
    /// A trader binds the wallet the exchange gives them with `tranche did
    /// consent-wallet` and places orders with `tranche service call`.
    ///
    /// Examples:
    ///   tranche exchange --config exchange.toml
    ///   tranche exchange --config exchange.toml staff add --subject did:key:z6Mk... --out op.json
    #[command(verbatim_doc_comment,
              after_long_help = format!("An example config (--config FILE):\n\n{}", tranche_exchange::EXAMPLE_CONFIG))]
    Exchange(commands::services::RoleArgs),
    /// Run an AML regulator's service: its policy published on chain
    /// (F6-1), exchanges' signed reports taken in (F6-6, F6-8) and
    /// reconciled against the chain (F6-9, REC-2), monitoring rules over
    /// them, every finding and alert on its audit log (REC-9); or keep its
    /// staff credentials.
    ///
    /// An exchange sends its reports here by setting `report_url` to this
    /// service's `/reports`. Staff read `/reconciliations`, `/findings` and
    /// `/alerts` with `tranche service call`.
    ///
    /// Examples:
    ///   tranche regulator --config regulator.toml
    ///   tranche regulator --config regulator.toml staff add --subject did:key:z6Mk... --role analyst --out an.json
    #[command(verbatim_doc_comment,
              after_long_help = format!("An example config (--config FILE):\n\n{}", tranche_regulator::EXAMPLE_CONFIG))]
    Regulator(commands::services::RoleArgs),
    /// Call a role service: log in with a DID, or sign as an organisation.
    #[command(subcommand)]
    Service(commands::services::ServiceCommand),
    /// Check a role service's exported audit log against the chain.
    #[command(subcommand)]
    Audit(commands::audit::AuditCommand),
    /// Run one validator node from its configuration file.
    ///
    /// The TOML file names the genesis, the node's key file (and password
    /// file, else TRANCHE_PASSWORD), its data folder, its p2p and API
    /// addresses, and every other validator's key and p2p address. A node
    /// killed at any moment restarts from its data folder and catches up
    /// from its peers.
    ///
    /// Example:
    ///   tranche node --config ./devnet/devnet-tsp/node.toml
    #[command(verbatim_doc_comment)]
    Node(commands::node::NodeArgs),
    /// Sign a payload with a key and send it to a node; wait for its receipt.
    ///
    /// The nonce is the signer's next as the node knows it (or --nonce); the
    /// chain is the node's. Exits 0 if the ledger applied the transaction,
    /// 3 if the node refused it or it was finalized but rejected (the
    /// receipt's code says why).
    ///
    /// Example:
    ///   tranche did bind-wallet --chain-id tranche-devnet --key alice --out p.json
    ///   tranche send p.json --key-file devnet/keys/devnet-tsp.key --password-file devnet/password
    #[command(verbatim_doc_comment)]
    Send(commands::client::SendArgs),
    /// Send transactions signed elsewhere (`tranche tx sign`) to a node.
    ///
    /// Several files go as batches, their signatures checked together.
    ///
    /// Example:
    ///   tranche submit signed.json --node http://127.0.0.1:27100
    ///   tranche submit settlement/*.json --node http://127.0.0.1:27100
    #[command(verbatim_doc_comment)]
    Submit(commands::client::SubmitArgs),
    /// Read the chain from a node: status, transactions, blocks, ledger state, transfers.
    ///
    /// Ledger answers carry the height and state root they were read at.
    ///
    /// Example:
    ///   tranche query token T-1 --node http://127.0.0.1:27100
    ///   tranche query transfers --wallet tr1... --since 1767225600000
    #[command(verbatim_doc_comment)]
    Query(commands::client::QueryArgs),
    /// Follow finalized transfers live, one JSON line each (for custodians and regulators).
    ///
    /// Example:
    ///   tranche watch --token T-1 --node http://127.0.0.1:27103
    #[command(verbatim_doc_comment)]
    Watch(commands::client::WatchArgs),
    /// Check a proof of a record of the state against a state root you trust.
    ///
    /// The proof comes from any node (`tranche query proof ...`); the root
    /// from your own node (--node, its block at the proof's height) or from
    /// --state-root. Nothing the proving node says is trusted: only the
    /// Merkle path from the record to the root. Exits 0 if the proof holds.
    ///
    /// Example:
    ///   tranche query proof balance T-1 tr1... --node http://127.0.0.1:27100 > p.json
    ///   tranche verify p.json --node http://127.0.0.1:27102
    #[command(verbatim_doc_comment)]
    Verify(commands::verify::VerifyArgs),
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
        Command::Devnet(a) => commands::devnet::run(a),
        Command::Node(a) => commands::node::run_node(a).map(|()| ExitCode::SUCCESS),
        Command::Send(a) => commands::client::send(&ctx, a),
        Command::Submit(a) => commands::client::submit(&ctx, a),
        Command::Query(a) => commands::client::query(&ctx, a),
        Command::Watch(a) => commands::client::watch(&ctx, a),
        Command::Verify(a) => commands::verify::run(&ctx, a),
        Command::Issuer(a) => commands::services::issuer(&ctx, a),
        Command::Bank(a) => commands::services::bank(&ctx, a),
        Command::Custodian(a) => commands::services::custodian(&ctx, a),
        Command::Exchange(a) => commands::services::exchange(&ctx, a),
        Command::Regulator(a) => commands::services::regulator(&ctx, a),
        Command::Tsp(a) => commands::services::tsp(&ctx, a),
        Command::Service(c) => commands::services::service(&ctx, c),
        Command::Audit(c) => commands::audit::run(&ctx, c),
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
            ExitCode::from(commands::exit_code(&e))
        }
    }
}
