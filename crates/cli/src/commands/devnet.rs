//! `tranche devnet`: a local chain of four organisations, each running its
//! validator as its own `tranche node` process, and a custodian running a
//! node that follows the chain without voting.

use super::client::Client;
use crate::keystore::{read_keyfile, write_private_atomically};
use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Serialize;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tranche_crypto::rand_core::{OsRng, RngCore as _};
use tranche_crypto::{KdfParams, KeyFile, Keypair};
use tranche_ledger::{Genesis, GenesisOrganisation};
use tranche_node::{NodeConfig, Peer};
use tranche_types::{ChainId, Role, Stake};

/// `tranche devnet` settings.
#[derive(Debug, Args)]
pub struct DevnetArgs {
    /// Where the devnet keeps its keys, genesis and each node's data.
    /// Started again on the same folder, it resumes the same chain.
    #[arg(long, default_value = "devnet")]
    pub data_dir: PathBuf,
    /// First port: the nodes' p2p ports are this and the next four (the
    /// validators, then the custodian's follower), their APIs 100 above.
    /// Used when the devnet is created.
    #[arg(long, default_value_t = 27000)]
    pub base_port: u16,
    /// Start the nodes, print where they are, and return instead of staying
    /// in the foreground (stop them with the pids in devnet.json).
    #[arg(long)]
    pub detach: bool,
}

/// The organisations of the devnet, with roles: the four validators first.
const ORGS: [(&str, &[Role], bool); 7] = [
    ("devnet-tsp", &[Role::Tsp, Role::Validator], true),
    ("devnet-issuer", &[Role::Issuer, Role::Validator], true),
    ("devnet-exchange", &[Role::Exchange, Role::Validator], true),
    (
        "devnet-regulator",
        &[Role::Regulator, Role::Validator],
        true,
    ),
    ("devnet-custodian", &[Role::Custodian], false),
    ("devnet-kyc", &[Role::ClaimIssuer], false),
    ("devnet-appraiser", &[Role::Appraiser], false),
];
const VALIDATORS: usize = 4;
/// The validators' nodes, then the custodian's, which follows the chain
/// (it reads it, for its own records, without voting).
const NODES: usize = 5;
const CHAIN_ID: &str = "tranche-devnet";

#[derive(Debug, Serialize)]
struct NodeEntry {
    org: String,
    validator: bool,
    pid: u32,
    api: String,
    p2p: String,
    config: String,
    log: String,
}

#[derive(Debug, Serialize)]
struct DevnetFile {
    /// False while the nodes start; true once every node has finalized a
    /// block, so a script that finds `"ready": true` may send at once.
    ready: bool,
    chain_id: String,
    password_file: String,
    keys: String,
    nodes: Vec<NodeEntry>,
}

fn port_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// Creates keys, genesis and node configurations, unless they exist.
fn create(dir: &Path, base_port: u16) -> Result<()> {
    if !(1024..=65_000).contains(&base_port) {
        super::usage!("--base-port must be 1024 to 65000");
    }
    std::fs::create_dir_all(dir.join("keys"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let mut secret = [0u8; 24];
    OsRng.fill_bytes(&mut secret);
    let password = hex::encode(secret);
    write_private_atomically(&dir.join("password"), password.as_bytes())?;
    let mut organisations = Vec::new();
    let mut keys = Vec::new();
    for (name, roles, validator) in ORGS {
        let key = Keypair::generate(&mut OsRng);
        let file = KeyFile::seal(&key, password.as_bytes(), KdfParams::DEFAULT, &mut OsRng)?;
        write_private_atomically(
            &dir.join("keys").join(format!("{name}.key")),
            file.to_json().as_bytes(),
        )?;
        organisations.push(GenesisOrganisation {
            org: name.parse()?,
            key: key.public_key(),
            roles: roles.to_vec(),
            governor: validator,
            stake: Stake(if validator { 1_000 } else { 0 }),
            bond: Stake(if validator { 1_000 } else { 0 }),
        });
        keys.push(key.public_key());
    }
    let genesis = Genesis {
        // Epochs of 100 blocks (about a minute when idle), so a devnet
        // shows committees being elected.
        epoch_blocks: Some(100),
        committee_max: None,
        chain_id: CHAIN_ID.parse::<ChainId>()?,
        organisations,
    };
    tranche_ledger::Ledger::genesis(&genesis)?;
    let p2p = |i: usize| SocketAddr::from((Ipv4Addr::LOCALHOST, base_port + i as u16));
    let api = |i: usize| SocketAddr::from((Ipv4Addr::LOCALHOST, base_port + 100 + i as u16));
    for (i, (name, _, _)) in ORGS.iter().take(NODES).enumerate() {
        let config = NodeConfig {
            genesis: "../genesis.json".into(),
            key: format!("../keys/{name}.key").into(),
            password_file: Some("../password".into()),
            data_dir: "data".into(),
            p2p_listen: p2p(i),
            api_listen: api(i),
            peers: (0..NODES)
                .filter(|j| *j != i)
                .map(|j| Peer {
                    key: keys[j],
                    address: p2p(j),
                })
                .collect(),
            // Loopback only; see docs/OPERATIONS.md for serving TLS.
            tls: None,
        };
        let node_dir = dir.join(name);
        std::fs::create_dir_all(&node_dir)?;
        std::fs::write(node_dir.join("node.toml"), config.to_toml())?;
    }
    // Written last: its presence means the devnet is complete.
    std::fs::write(
        dir.join("genesis.json"),
        serde_json::to_string_pretty(&genesis)? + "\n",
    )?;
    Ok(())
}

fn wait_ready(api: &str, child: &mut Child, org: &str, log: &Path) -> Result<()> {
    let client = Client::new(api)?;
    for _ in 0..1200 {
        if let Some(status) = child.try_wait()? {
            bail!(
                "node {org} exited ({status}) while starting; see {}",
                log.display()
            );
        }
        if client.status().is_ok_and(|s| s.finalized_height > 0) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!(
        "node {org} did not finalize a block within two minutes; see {}",
        log.display()
    )
}

fn stop(children: &mut [(String, Child)]) {
    for (_, child) in children.iter() {
        // A graceful stop; SIGKILL below if it does not come.
        super::signal(u64::from(child.id()), "TERM");
    }
    for (org, child) in children.iter_mut() {
        for _ in 0..50 {
            if matches!(child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if !matches!(child.try_wait(), Ok(Some(_))) {
            eprintln!("node {org} did not stop; killing it");
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn run(args: DevnetArgs) -> Result<std::process::ExitCode> {
    let dir = &args.data_dir;
    let resumed = dir.join("genesis.json").exists();
    if !resumed {
        for port in (0..NODES as u16).flat_map(|i| [args.base_port + i, args.base_port + 100 + i]) {
            if !port_free(port) {
                bail!("port {port} is in use: pick other ports with --base-port");
            }
        }
        println!("creating a devnet in {}", dir.display());
        create(dir, args.base_port)?;
    } else {
        println!("resuming the devnet in {}", dir.display());
    }
    let exe = std::env::current_exe().context("cannot find the tranche executable")?;
    let mut children: Vec<(String, Child)> = Vec::new();
    let mut nodes = Vec::new();
    for (i, (name, _, _)) in ORGS.iter().take(NODES).enumerate() {
        let config_path = dir.join(name).join("node.toml");
        let config = NodeConfig::load(&config_path)?;
        // Fail here, not in four logs, if the key cannot be opened.
        read_keyfile(&config.key)?;
        let log_path = dir.join(name).join("node.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("cannot open {}", log_path.display()))?;
        let child = Command::new(&exe)
            .arg("node")
            .arg("--config")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start the node of {name}"))?;
        nodes.push(NodeEntry {
            org: name.to_string(),
            validator: i < VALIDATORS,
            pid: child.id(),
            api: format!("http://{}", config.api_listen),
            p2p: config.p2p_listen.to_string(),
            config: config_path.display().to_string(),
            log: log_path.display().to_string(),
        });
        children.push((name.to_string(), child));
    }
    let mut file = DevnetFile {
        ready: false,
        chain_id: CHAIN_ID.into(),
        password_file: dir.join("password").display().to_string(),
        keys: dir.join("keys").display().to_string(),
        nodes,
    };
    // Written at once, so the pids are known while the nodes start, and
    // again with "ready": true once all of them finalize.
    let write = |file: &DevnetFile| -> Result<()> {
        write_private_atomically(
            &dir.join("devnet.json"),
            (serde_json::to_string_pretty(file)? + "\n").as_bytes(),
        )
    };
    write(&file)?;
    for (i, (org, child)) in children.iter_mut().enumerate() {
        let entry = &file.nodes[i];
        if let Err(e) = wait_ready(&entry.api, child, org, Path::new(&entry.log)) {
            stop(&mut children);
            return Err(e);
        }
    }
    file.ready = true;
    write(&file)?;
    println!("devnet {CHAIN_ID} is finalizing blocks:");
    for n in &file.nodes {
        println!(
            "  {:<18} api {}  p2p {}  pid {}{}",
            n.org,
            n.api,
            n.p2p,
            n.pid,
            if n.validator { "" } else { "  (follows)" }
        );
    }
    println!("keys in {} (password in {})", file.keys, file.password_file);
    println!("nodes described in {}", dir.join("devnet.json").display());
    if args.detach {
        return Ok(std::process::ExitCode::SUCCESS);
    }
    println!("press Ctrl-C to stop; run again with the same --data-dir to resume");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut reported = vec![false; children.len()];
    runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM can be handled");
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {
                    for (i, (org, child)) in children.iter_mut().enumerate() {
                        if !reported[i] {
                            if let Ok(Some(status)) = child.try_wait() {
                                reported[i] = true;
                                eprintln!(
                                    "node {org} exited ({status}); the others go on while 3 of the 4 validators run. Restart it with:\n  {} node --config {}",
                                    exe.display(),
                                    file.nodes[i].config
                                );
                            }
                        }
                    }
                }
            }
        }
    });
    println!("stopping the nodes");
    stop(&mut children);
    Ok(std::process::ExitCode::SUCCESS)
}
